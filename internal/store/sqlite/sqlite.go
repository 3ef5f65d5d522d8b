// Package sqlite is the embedded default store: pure-Go SQLite (no cgo), one
// database file per mode, WAL journal, migrations embedded in the binary.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/keymaps"
	"github.com/hsrcpay/apikeys/internal/store/internal/namerow"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the SQLite files.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: NORMAL (default) survives a
	// process crash in WAL mode; FULL also survives power loss.
	Synchronous string
	// Schema is what Open does about the files' schema version (default:
	// apply the pending migrations).
	Schema store.SchemaPolicy
}

// Store keeps live keys in DIR/live.db and sandbox keys in DIR/sandbox.db.
type Store struct {
	repos map[apikey.Mode]*Repo
	inst  *instance // this open's instance (instance.go)
}

// FileNames maps each mode to its database file name inside the directory.
var FileNames = map[apikey.Mode]string{apikey.Live: "live.db", apikey.Sandbox: "sandbox.db"}

// Open creates dir if needed, opens both files and applies migrations.
func Open(ctx context.Context, dir string, opt Options) (*Store, error) {
	if opt.Synchronous == "" {
		opt.Synchronous = "NORMAL"
	}
	switch strings.ToUpper(opt.Synchronous) {
	case "OFF", "NORMAL", "FULL", "EXTRA":
	default:
		return nil, fmt.Errorf("sqlite: synchronous must be OFF, NORMAL, FULL or EXTRA, not %q", opt.Synchronous)
	}
	// A directory Open makes is 0700 whatever the umask (MkdirAll's mode is
	// masked by it, but 0700 loses nothing to 022 or 077). An existing one,
	// the operator's (often a mounted volume, 0755), keeps its mode: it may
	// be shared on purpose and chmod may be refused there; every file in it
	// is 0600 instead (privateFiles), which is what protects the rows.
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: create %s: %w", dir, err)
	}
	s := &Store{repos: map[apikey.Mode]*Repo{}}
	for _, m := range apikey.Modes {
		r, err := openRepo(ctx, m, filepath.Join(dir, FileNames[m]), opt)
		if err != nil {
			_ = s.Close() // the modes opened so far; err is the one to report
			return nil, err
		}
		s.repos[m] = r
	}
	inst, err := holdInstance(dir)
	if err != nil {
		_ = s.Close() // err is the one to report
		return nil, err
	}
	s.inst = inst
	for _, r := range s.repos {
		r.w.inst = inst
	}
	return s, nil
}

// Connection settings. Every connection: WAL, foreign keys, the configured
// synchronous level, and busy_timeout so that a tool writing through DB (or
// another process) makes the others wait instead of failing.
const (
	// readers is the size of the read pool (key lookups, lists, audit reads),
	// and of the hot reads' own connections beside it (fastread.go).
	readers = 8
	// readerCacheKiB: a reader's page cache survives until the next commit
	// (SQLite drops it when the WAL changes); group commit makes commits
	// rarer, so a cache above the 2 MiB default now pays off between them.
	readerCacheKiB = 8 << 10
	// readerMmapBytes: readers read the database file through a read-only
	// memory map (PRAGMA mmap_size) instead of pread() into their page
	// cache. A credential-cache miss reads a few pages of the secret hash
	// index and of the table; at a million keys they are rarely in a
	// reader's 8 MiB cache (dropped at every commit anyway), and each was a
	// system call, a copy and a page-cache slot to recycle. Mapped, a page
	// is a pointer into the kernel's page cache, shared by the eight readers
	// and the writer's write() calls (Linux's unified buffer cache): the
	// lookup takes ~25 % less CPU at a million keys
	// (BenchmarkKeyBySecretHashSeeded: ~41 → ~29 µs).
	//
	// Safety (https://sqlite.org/mmap.html): only reads change. The map is
	// PROT_READ (SQLite is not built with SQLITE_MMAP_READWRITE), so no
	// stray write can reach the file; every write still goes through the
	// WAL and checkpoints with write(), and synchronous is unchanged, so
	// durability is as before. In WAL mode a reader takes a page from the
	// WAL whenever the WAL has it, and maps only the pages checkpointed into
	// the file, which a checkpoint changes only once no reader needs their
	// old content (as with pread). SQLite remaps when the file grows or
	// shrinks (its own truncation, VACUUM). What differs: a disk read error
	// on a mapped page is a SIGBUS, which crashes the process, where pread
	// returned SQLITE_IOERR (a 500 for the request); so does another
	// process truncating the file under it, which is corruption anyway. A
	// crashed replica restarts on a file intact on disk. The mapping costs
	// address space, not memory: its pages are the kernel's page cache
	// (reclaimable). 2 GiB is the build's most (SQLITE_MAX_MMAP_SIZE);
	// beyond it a bigger file is read through pread as before.
	readerMmapBytes = 2 << 30
	// writerCacheKiB: the writer is the only connection that changes the
	// file, so its cache stays valid across commits: the hot pages (account
	// rows, index interiors) stay in memory.
	writerCacheKiB = 16 << 10
	// busyTimeout is how long a connection waits for a lock another holds
	// (SQLite's busy handler) before SQLITE_BUSY.
	busyTimeout = 10 * time.Second
)

func dsn(path string, opt Options, pragmas ...string) string {
	d := "file:" + path + fmt.Sprintf("?_pragma=busy_timeout(%d)", busyTimeout.Milliseconds()) +
		"&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(" + strings.ToUpper(opt.Synchronous) + ")"
	for _, p := range pragmas {
		d += "&_pragma=" + p
	}
	return d
}

func openRepo(ctx context.Context, mode apikey.Mode, path string, opt Options) (_ *Repo, err error) {
	r := &Repo{mode: mode, path: path}
	defer func() {
		if err != nil {
			_ = r.close() // what was opened so far; err is the one to report
		}
	}()
	if err := privateFiles(path); err != nil {
		return nil, err
	}
	// The tools' handle (DB): migrations, tests, checkpoints. _txlock=immediate
	// takes the write lock at BEGIN, so that its read-modify-write
	// transactions wait for the writer instead of failing on upgrade.
	if r.db, err = sql.Open("sqlite", dsn(path, opt)+"&_txlock=immediate"); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.db.SetMaxOpenConns(4)
	r.db.SetMaxIdleConns(1)
	if opt.Schema != store.SchemaMigrate {
		// Migrations are the operator's (hsrcpay-server migrate): check the
		// version only; the name keys are rows, filled as after a migration.
		if err := part(mode, path, r.db).Check(ctx, migrationFS(), opt.Schema); err != nil {
			return nil, fmt.Errorf("sqlite: %s: %w", path, err)
		}
	} else {
		sub, err := fs.Sub(migrations, "migrations")
		var prov *goose.Provider
		if err == nil {
			prov, err = goose.NewProvider(goose.DialectSQLite3, r.db, sub)
		}
		if err == nil {
			_, err = prov.Up(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
		}
		if _, err := namerow.Fill(ctx, r.db, nameKeySQL); err != nil {
			return nil, fmt.Errorf("sqlite: name keys %s: %w", path, err)
		}
	}
	// Readers: query_only, so that no write can bypass the writer.
	if r.rdb, err = sql.Open("sqlite", dsn(path, opt, "query_only(1)", fmt.Sprintf("cache_size(-%d)", readerCacheKiB),
		fmt.Sprintf("mmap_size(%d)", readerMmapBytes))); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r.rdb.SetMaxOpenConns(readers)
	r.rdb.SetMaxIdleConns(readers)
	if err := r.prepare(ctx); err != nil {
		return nil, fmt.Errorf("sqlite: prepare %s: %w", path, err)
	}
	// The hot reads' connections (fastread.go): the readers' settings, and
	// busy_timeout 0 (after the DSN's first, so it wins): a read that would
	// wait for a lock runs on rdb instead, which waits under its context.
	if r.fast, err = openFastReaders(ctx, r.rdb.Driver(), dsn(path, opt, "query_only(1)", fmt.Sprintf("cache_size(-%d)", readerCacheKiB),
		fmt.Sprintf("mmap_size(%d)", readerMmapBytes), "busy_timeout(0)"), readers); err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	// The writer: one connection, which never checkpoints on COMMIT (the
	// checkpointer does, in the background, and the writer between batches
	// to keep the WAL bounded: see writer.go). temp_store=MEMORY keeps the
	// savepoints' journal (the original of each page a unit changes) in
	// memory: on disk it was a write() per page per unit. journal_size_limit:
	// the first COMMIT after the WAL restarts truncates a file that grew
	// longer (while a reader held the restart off) back to that size.
	wdb, err := sql.Open("sqlite", dsn(path, opt, "wal_autocheckpoint(0)", "temp_store(MEMORY)",
		fmt.Sprintf("cache_size(-%d)", writerCacheKiB), fmt.Sprintf("journal_size_limit(%d)", walSizeLimit)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	if r.w, err = newWriter(ctx, wdb, mode, path); err != nil {
		_ = wdb.Close() // err is the one to report
		return nil, fmt.Errorf("sqlite: writer %s: %w", path, err)
	}
	r.checkpointed = make(chan struct{})
	go checkpoint(context.WithoutCancel(ctx), r.db, r.w, r.checkpointed, &r.checkpoints) // stopped by the writer's end, not by ctx
	return r, nil
}

// nameKeySQL fills the name keys that 00009 could not (see namerow).
var nameKeySQL = namerow.SQL{
	Missing: `SELECT id, account_id, name, deleted = 0 AND name_released = 0 FROM api_keys
		WHERE name_key IS NULL ORDER BY created_at, id`,
	Taken: `SELECT count(*) FROM api_keys WHERE account_id = ? AND name_key = ? AND deleted = 0 AND name_released = 0`,
	Set:   `UPDATE api_keys SET name_key = ? WHERE id = ?`,
}

// sidecars are the files SQLite keeps beside a database: the WAL (every
// committed row until a checkpoint), its shared-memory index, and the
// rollback journal (before journal_mode=WAL takes effect on a new file).
var sidecars = []string{"-wal", "-shm", "-journal"}

// privateFiles makes the database file at path, and the sidecars that
// exist, mode 0600 before SQLite opens them: the file is created here (0600,
// O_EXCL-free so an existing one is kept) and chmod'ed, since the umask or
// an older version may have left 0644. SQLite's unix VFS gives the sidecars
// it creates later the database file's mode (robust_open with the mode of
// the main file), so they are 0600 too, whatever the umask; the test
// TestFileModesOfData (server) checks what really happens.
func privateFiles(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600) //nolint:gosec // the operator's data directory
	if err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
	for _, p := range append([]string{path}, path+sidecars[0], path+sidecars[1], path+sidecars[2]) {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sqlite: make %s private: %w", p, err)
		}
	}
	return nil
}

func (s *Store) Repo(m apikey.Mode) store.Repository { return s.repos[m] }

// DB exposes a mode's file for tests and tooling: a handle of its own, apart
// from the readers and the writer. A write through it waits for the writer's
// batch in progress (busy_timeout) and commits on its own.
func (s *Store) DB(m apikey.Mode) *sql.DB { return s.repos[m].db }

// Ping checks that each mode's file can be read and that its writer runs.
func (s *Store) Ping(ctx context.Context) error {
	for _, r := range s.repos {
		if r.w.isClosed() {
			return unavailable(errClosed)
		}
		if err := r.rdb.PingContext(ctx); err != nil {
			return unavailable(err)
		}
	}
	return nil
}

// PingWrite runs a unit of work through each mode's writer that changes the
// database header's user_version (unused otherwise) and commits: the writer
// is alive, the lock can be had, and the WAL takes a frame (on a full disk
// that grows it, SQLITE_FULL).
func (s *Store) PingWrite(ctx context.Context) error {
	v := time.Now().Unix() & 0x7fffffff // a new value each probe, so the page really changes
	for _, r := range s.repos {
		err := r.InTx(ctx, func(stx store.Tx) error {
			t := stx.(*tx) // InTx hands its fn this package's tx, always
			if err := t.usable(ctx); err != nil {
				return err
			}
			_, err := t.w.conn.ExecContext(context.WithoutCancel(ctx), fmt.Sprintf("PRAGMA user_version = %d", v))
			return t.w.note(err)
		})
		if err != nil {
			return err // classified by InTx
		}
	}
	return nil
}

// Close lets each writer run the units already queued, then closes the files.
func (s *Store) Close() error {
	var errs []error
	for _, r := range s.repos {
		errs = append(errs, r.close())
	}
	// Last: the writers have run every unit, so no claim of this instance
	// is being made or completed any more.
	if s.inst != nil {
		errs = append(errs, s.inst.release())
	}
	return errors.Join(errs...)
}

// Repo is one mode's database: a pool of readers, one writer that runs
// every unit of work (see writer.go), and a handle for tools.
type Repo struct {
	db           *sql.DB
	rdb          *sql.DB
	fast         *fastReaders // the hot reads (fastread.go); rdb the others, and theirs when busy
	w            *writer
	checkpointed chan struct{} // closed when the checkpointer has stopped
	checkpoints  atomic.Int64  // checkpoints run, for tests
	mode         apikey.Mode   // what the events appended here belong to
	path         string        // the database file (its WAL is path-wal: WriterStats)
	// The hot reads, compiled once per reader connection instead of per call
	// (statement compilation was ~11% of the server's CPU under load).
	getKey, byHash, accountExists *sql.Stmt
	// getKeyJoined is GetKey's statement (joinedKeyColumns); getKey reads
	// a key it cannot.
	getKeyJoined *sql.Stmt
	// The lists' statements, one per combination of filters (shapes.go).
	listKeys, listEvents *shapes
}

var (
	_ store.Repository        = (*Repo)(nil)
	_ store.IdempotencyReader = (*Repo)(nil)
)

func (r *Repo) close() error {
	var errs []error
	if r.w != nil {
		errs = append(errs, r.w.close())
		<-r.checkpointed // the writer's end stops it
	}
	if r.fast != nil {
		errs = append(errs, r.fast.close())
	}
	for _, db := range []*sql.DB{r.rdb, r.db} {
		if db != nil {
			errs = append(errs, db.Close())
		}
	}
	return errors.Join(errs...)
}

const (
	insertKeySQL = `INSERT INTO api_keys
	(id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
	 last_used_at, last_used_ip, expires_at, created_at, updated_at,
	 created_by_kind, created_by_id, created_by_request, key_hint, name_key, allowed_networks, rate_limit, rate_window_seconds,
	 credits_remaining, credits_refill_amount, credits_refill_interval, credits_refill_day, credits_refilled_at)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	getKeySQL = `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`
	// An empty page of keys or events asks it (is the account there at all).
	accountExistsSQL = `SELECT count(*) FROM accounts WHERE id = ?`
	// A key by its current secret's hash, or else by its previous one's:
	// one probe of each unique index, no sort. The second arm yields a row
	// only when no key has the hash as its current secret, so at most one
	// row comes back whatever order UNION ALL runs its arms in, and the
	// current secret wins, as in the PostgreSQL store
	// (TestLookupCurrentSecretWins). The statement it replaces (OR, then
	// ORDER BY to put the current secret first) ran a MULTI-INDEX OR into a
	// temporary b-tree for every lookup: 10-30 % more CPU
	// (BenchmarkKeyBySecretHashSeeded, BenchmarkKeyBySecretHashAmong).
	// (SELECT ?1): compared with the bound parameter itself, the partial
	// index's probe makes SQLite, once ANALYZE has left sqlite_stat4
	// samples, recompile the statement for every new value (~30 µs a
	// lookup); a subquery's value is not one the planner looks at.
	byHashSQL = `SELECT ` + keyColumns + ` FROM api_keys WHERE secret_hash = ?1
	UNION ALL
	SELECT ` + keyColumns + ` FROM api_keys WHERE prev_secret_hash = (SELECT ?1)
		AND NOT EXISTS (SELECT 1 FROM api_keys WHERE secret_hash = ?1)`
	// UpdateKey's statement when only the secret changes (a rotation): the
	// columns of updateKeySQL's ?2 and ?8 to ?11, so that SQLite rewrites
	// the row and the secrets' indexes, not every index whose columns
	// updateKeySQL sets (the names', the account's keys') with the values
	// they have (each a delete and an insert), nor run the live-key trigger.
	// A column another binary wrote in another form of the same value (JSON,
	// a time) keeps that form, which reads back the same.
	// TestNarrowUpdateIsUpdate holds the two to the same rows.
	rotateKeySQL = `UPDATE api_keys SET secret_hash = ?2, updated_at = ?8, prev_secret_hash = ?9,
	prev_secret_expires_at = ?10, key_hint = ?11 WHERE id = ?12`
	// A key that takes a new name holds it again (name_released = 0), so
	// the unique index applies to it even if it had released its old one; a
	// new name is a new name key (migration 00009): "a  b" for "a b" is the
	// same name to people, and keeps the old one's release.
	updateKeySQL = `UPDATE api_keys SET name = ?1, secret_hash = ?2, permissions = ?3, metadata = ?4,
	status = ?5, deleted = ?6, expires_at = ?7, updated_at = ?8, prev_secret_hash = ?9, prev_secret_expires_at = ?10,
	key_hint = ?11, name_key = ?13, allowed_networks = ?14, rate_limit = ?15, rate_window_seconds = ?16,
	credits_remaining = ?17, credits_refill_amount = ?18, credits_refill_interval = ?19, credits_refill_day = ?20, credits_refilled_at = ?21,
	name_released = CASE WHEN name_key IS ?13 THEN name_released ELSE 0 END WHERE id = ?12`
)

func (r *Repo) prepare(ctx context.Context) error {
	var err error
	if r.getKey, err = r.rdb.PrepareContext(ctx, getKeySQL); err != nil {
		return err
	}
	if r.getKeyJoined, err = r.rdb.PrepareContext(ctx, getKeyJoinedSQL); err != nil {
		return err
	}
	if r.byHash, err = r.rdb.PrepareContext(ctx, byHashSQL); err != nil {
		return err
	}
	if r.accountExists, err = r.rdb.PrepareContext(ctx, accountExistsSQL); err != nil {
		return err
	}
	r.listKeys = newShapes(r.rdb, listShapes, listKeysSQL)
	r.listEvents = newShapes(r.rdb, eventShapes, listEventsSQL)
	return nil
}

// Fixed-width UTC timestamps compare correctly as text.
const timeFormat = "2006-01-02T15:04:05.000000000Z"

func fmtTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func fmtTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return fmtTime(*t)
}

// parseTime reads a timeFormat column. The digits are read here when the
// text has timeFormat's shape and names a real date (time.Parse took ~0.6 µs
// a time, 2-3 times a key and once an event on every read); anything else is
// left to time.Parse, which then decides (FuzzParseTime holds the two together).
func parseTime(s string) (time.Time, error) {
	if t, ok := fastTime(s); ok {
		return t, nil
	}
	return time.Parse(timeFormat, s)
}

func fastTime(s string) (time.Time, bool) {
	if len(s) != len(timeFormat) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
		s[19] != '.' || s[29] != 'Z' {
		return time.Time{}, false
	}
	ok := true
	num := func(from, to int) int {
		n := 0
		for i := from; i < to; i++ {
			c := s[i]
			if c < '0' || c > '9' {
				ok = false
			}
			n = n*10 + int(c-'0')
		}
		return n
	}
	y, mo, d := num(0, 4), num(5, 7), num(8, 10)
	h, mi, sec, ns := num(11, 13), num(14, 16), num(17, 19), num(20, 29)
	if !ok || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	if d > 28 && d > daysIn(mo, y) { // the 31st of a shorter month: time.Parse refuses it
		return time.Time{}, false
	}
	// Days since 1970-01-01 of the proleptic Gregorian date (Howard
	// Hinnant's days_from_civil), cheaper than time.Date's normalization.
	yy := y
	if mo <= 2 {
		yy--
	}
	era := yy / 400
	if yy < 0 {
		era = (yy - 399) / 400
	}
	yoe := yy - era*400
	mp := (mo + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	days := int64(era)*146097 + int64(doe) - 719468
	return time.Unix(days*86400+int64(h*3600+mi*60+sec), int64(ns)).UTC(), true
}

func daysIn(month, year int) int {
	switch month {
	case 2:
		if year%4 == 0 && (year%100 != 0 || year%400 == 0) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

func (r *Repo) AccountExists(ctx context.Context, id string) (_ bool, err error) {
	defer classify(&err)
	if ok, done, err := r.fastAccountExists(ctx, id); done {
		return ok, err
	}
	var n int
	err = r.accountExists.QueryRowContext(ctx, id).Scan(&n)
	return n > 0, err
}

// InTx runs fn as one unit of a group commit (see writer.go): inside a
// savepoint of the writer's transaction, which holds the database's write
// lock, so what fn reads cannot change before it commits. It returns nil
// only once that transaction has committed. fn runs on the writer's
// goroutine (a panic in it is re-raised here) and must not call InTx: the
// writer would wait for itself.
func (r *Repo) InTx(ctx context.Context, fn func(store.Tx) error) (err error) {
	defer classify(&err)
	return r.w.run(ctx, fn)
}

// tx is one unit of work, run by the writer inside its savepoint.
type tx struct {
	w   *writer
	ctx context.Context // InTx's: its end ends the unit
	// ended is set when the unit is over: a Tx kept past it must not write
	// into the next unit.
	ended atomic.Bool
	// head is the audit chain's head of the account this unit locked last
	// (headAccount): units run one at a time, so it stays current until the
	// unit ends, and AppendAuditEvent needs no statement to read it.
	headAccount string
	head        auditHead
	// liveKeys is accounts.live_keys of headAccount as LockAccount read it
	// and this unit's inserts moved it, while liveKnown (until this unit
	// writes a key otherwise).
	liveKeys  int64
	liveKnown bool
	// acctOps is what the unit did to account rows, for the writer's
	// account cache (acctcache.go); touchedAll: to any of them.
	acctOps    []acctOp
	touchedAll bool
	// keysRead: the account and deleted flag of the keys the unit read or
	// wrote, as the rows have them now (acctcache.go, keyUpdated).
	keysRead map[string]keyRow
	// readAs: the keys this unit read (Key), as their rows hold them now
	// (immutable copies, the key cache's own when it had them): UpdateKey
	// compares with them to write only the columns that change (see
	// rotateKeySQL). Dropped when the unit writes the key.
	readAs readKeys
	// release is a ReleaseExpiredName not run yet (see ReleaseExpiredName).
	release *nameRelease
}

type auditHead struct {
	seq  int64
	hash string
}

var _ store.Tx = (*tx)(nil)

// usable says why the unit may not run another statement: it has ended,
// SQLite rolled the batch's transaction back (a statement now would run, and
// commit, on its own), or the caller gave up. Statements then run without
// the caller's context: cancelling one midway would make SQLite interrupt it,
// and an interrupted write rolls back the whole transaction, every other
// unit's work with it; checking before each statement ends the unit as soon.
func (t *tx) usable(ctx context.Context) error {
	switch {
	case t.ended.Load():
		return errTxDone
	case t.w.rolledBack.Load():
		return t.w.abortError()
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return t.ctx.Err()
}

// execN runs a statement of the unit and returns how many rows it changed.
func (t *tx) execN(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	if err := t.usable(ctx); err != nil {
		return 0, err
	}
	if err := t.releaseNow(ctx); err != nil {
		return 0, err
	}
	return t.execNow(ctx, st, args...)
}

// execNow is execN with the pending release left pending: only for the
// insert that may make it moot (InsertKey), and for the release itself.
func (t *tx) execNow(ctx context.Context, st *sql.Stmt, args ...any) (int64, error) {
	if err := t.usable(ctx); err != nil {
		return 0, err
	}
	res, err := st.ExecContext(context.WithoutCancel(ctx), args...)
	if err = t.w.note(err); err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// exec runs a statement of the unit (execN without the count).
func (t *tx) exec(ctx context.Context, st *sql.Stmt, args ...any) error {
	_, err := t.execN(ctx, st, args...)
	return err
}

// row runs a one-row query; its Scan's error is noted as exec's.
func (t *tx) row(ctx context.Context, st *sql.Stmt, args ...any) scanner {
	if err := t.usable(ctx); err != nil {
		return errRow{err}
	}
	if err := t.releaseNow(ctx); err != nil {
		return errRow{err}
	}
	return checkedRow{st.QueryRowContext(context.WithoutCancel(ctx), args...), t.w}
}

type checkedRow struct {
	row *sql.Row
	w   *writer
}

func (r checkedRow) Scan(dst ...any) error { return r.w.note(r.row.Scan(dst...)) }

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (t *tx) CreateAccount(ctx context.Context, id string, now time.Time) error {
	if t.headAccount == id {
		t.headAccount = ""
	}
	t.touch(id)
	err := t.exec(ctx, t.w.st.createAccount, id, fmtTime(now))
	if isUnique(err) {
		return store.ErrAccountExists
	}
	return err
}

// LockAccount checks that the account exists (the writer's transaction
// holds every row) and keeps its audit chain's head, for AppendAuditEvent,
// and its count of keys not deleted, for KeyCapReached: from what the unit
// knows already, or the writer's account cache (acctcache.go), or the row.
func (t *tx) LockAccount(ctx context.Context, id string) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if t.headAccount == id && t.liveKnown {
		return nil
	}
	if t.headAccount != id {
		t.leaveHead()
		if st, ok := t.cachedAccount(id); ok {
			t.headAccount, t.head = id, st.head
			t.liveKeys, t.liveKnown = st.live, true
			return nil
		}
	}
	var h auditHead
	var live int64
	err := t.row(ctx, t.w.st.lockAccount, id).Scan(&h.seq, &h.hash, &live)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNoAccount
	}
	if err != nil {
		return err
	}
	t.headAccount, t.head = id, h
	t.liveKeys, t.liveKnown = live, true
	return nil
}

func (t *tx) DeleteAccount(ctx context.Context, id string) error {
	if t.headAccount == id {
		t.headAccount = ""
	}
	t.touch(id)
	t.liveKnown = false
	clear(t.keysRead) // some are gone: an update of them changes nothing
	t.readAs.clear()
	t.w.keys.wroteAll()
	// Its events too: the account row that records the chain's head goes.
	for _, st := range []*sql.Stmt{t.w.st.deleteEvents, t.w.st.deleteKeys, t.w.st.deleteAccount} {
		if err := t.exec(ctx, st, id); err != nil {
			return err
		}
	}
	return nil
}

// Key answers from the writer's key cache when it can (keycache.go): the
// same key, as committed, that the statement would read.
func (t *tx) Key(ctx context.Context, id string) (*apikey.Key, error) {
	if err := t.usable(ctx); err != nil {
		return nil, err
	}
	var k *apikey.Key
	base, ok := t.w.keys.peek(id)
	if ok {
		k = cloneKey(base)
	} else {
		var err error
		if k, err = scanKey(t.row(ctx, t.w.st.getKey, id)); err != nil {
			return nil, err
		}
		if base = t.w.keys.put(k); base == nil {
			base = cloneKey(k) // the caller may change k
		}
	}
	t.readAs.set(base)
	t.keyRead(k.ID, k.AccountID, k.Deleted)
	return k, nil
}

func (t *tx) KeyCapReached(ctx context.Context, accountID string, now time.Time, limit int) (bool, error) {
	if t.liveKnown && t.headAccount == accountID && t.liveKeys < int64(limit) {
		return false, nil // active keys <= keys not deleted < limit
	}
	var reached bool
	err := t.row(ctx, t.w.st.capReached, accountID, fmtTime(now), limit).Scan(&reached)
	if errors.Is(err, sql.ErrNoRows) {
		return false, store.ErrNoAccount
	}
	return reached, err
}

// nameRelease is the arguments of a ReleaseExpiredName.
type nameRelease struct{ accountID, nameKey, now string }

// ReleaseExpiredName is run lazily. A create calls it before every insert,
// and it almost never has anything to release: an UPDATE statement per
// create for nothing. What it releases matters only to the unique index on
// (account_id, name_key) WHERE deleted = 0 AND name_released = 0, which the
// keys it would release are in, with that name key: so an insert of a live
// key with that name key that succeeds proves that there was nothing to
// release. The release is kept until InsertKey tries the insert, and run
// (then the insert again) only if the insert meets a name it would have
// freed; any other statement of the unit, or its end, runs it first, as
// the caller asked.
func (t *tx) ReleaseExpiredName(ctx context.Context, accountID, name string, now time.Time) error {
	if err := t.usable(ctx); err != nil {
		return err
	}
	if err := t.releaseNow(ctx); err != nil { // an earlier one, first
		return err
	}
	t.release = &nameRelease{accountID: accountID, nameKey: namekey.Key(name), now: fmtTime(now)}
	return nil
}

// releaseNow runs the pending release, if any.
func (t *tx) releaseNow(ctx context.Context) error {
	r := t.release
	if r == nil {
		return nil
	}
	t.release = nil
	_, err := t.execNow(ctx, t.w.st.releaseName, r.accountID, r.nameKey, r.now)
	return err
}

func (t *tx) InsertKey(ctx context.Context, k *apikey.Key) (err error) {
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	defer func() {
		// The trigger api_keys_live_insert counts a live key in.
		switch {
		case k.AccountID != t.headAccount:
			t.touch(k.AccountID)
		case err != nil:
			t.liveKnown = false // nothing changed, as a rule: not worth relying on
		case !k.Deleted:
			t.liveKeys++
		}
		if err == nil {
			t.keyRead(k.ID, k.AccountID, k.Deleted)
		}
	}()
	k.NameKey = namekey.Key(k.Name) // the store keeps it in step with the name
	rateLimit, rateWindow := store.EncodeRateLimit(k.RateLimit)
	cr := store.EncodeCredits(k.Credits)
	t.w.keys.wrote(k.ID)
	t.readAs.drop(k.ID)
	args := []any{k.ID, k.AccountID, k.Name, k.Type, k.SecretHash, perms, meta, k.Status, k.Managed, k.Deleted,
		fmtTimePtr(k.LastUsedAt), k.LastUsedIP, fmtTimePtr(k.ExpiresAt), fmtTime(k.CreatedAt), fmtTime(k.UpdatedAt),
		k.CreatedBy.Kind, k.CreatedBy.ID, k.CreatedBy.RequestID, nullIfEmpty(k.KeyHint), k.NameKey,
		store.EncodeNetworks(k.AllowedNetworks), rateLimit, rateWindow,
		cr.Remaining, cr.RefillAmount, cr.RefillInterval, cr.RefillDay, cr.RefilledAt}
	if r := t.release; r != nil && !k.Deleted && r.accountID == k.AccountID && r.nameKey == k.NameKey {
		// The pending release is of this name (ReleaseExpiredName): the
		// insert first; if it succeeds, there was nothing to release.
		_, err := t.execNow(ctx, t.w.st.insertKey, args...)
		if err = mapInsertErr(err); !errors.Is(err, store.ErrDuplicateName) {
			if err == nil {
				t.release = nil
			}
			return err
		}
	}
	return mapInsertErr(t.exec(ctx, t.w.st.insertKey, args...))
}

func (t *tx) UpdateKey(ctx context.Context, k *apikey.Key) (err error) {
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	k.NameKey = namekey.Key(k.Name)
	read := t.readAs.get(k.ID)
	t.w.keys.wrote(k.ID)
	t.readAs.drop(k.ID)
	defer func() { t.keyUpdated(k, err) }()
	args := updateArgs(k, perms, meta)
	if narrowUpdates && read != nil && onlySecretChanged(read, k) {
		t.w.rotations++
		if err := t.exec(ctx, t.w.st.rotateKey, args[:rotateKeyArgs]...); err != nil {
			return mapInsertErr(err)
		}
		row, err := rotatedRow(read, k)
		if err == nil { // else the key is read back by statement, as any written one
			t.w.keys.rotated(row)
		}
		return nil
	}
	return mapInsertErr(t.exec(ctx, t.w.st.updateKey, args...))
}

// updateArgs are updateKeySQL's arguments (?1 to ?21) for k, whose maps
// encode as perms and meta.
func updateArgs(k *apikey.Key, perms, meta string) []any {
	rateLimit, rateWindow := store.EncodeRateLimit(k.RateLimit)
	cr := store.EncodeCredits(k.Credits)
	return []any{
		k.Name, k.SecretHash, perms, meta, k.Status, k.Deleted, fmtTimePtr(k.ExpiresAt), fmtTime(k.UpdatedAt),
		nilIfEmpty(k.PrevSecretHash), fmtTimePtr(k.PrevSecretExpiresAt), nullIfEmpty(k.KeyHint), k.ID, k.NameKey,
		store.EncodeNetworks(k.AllowedNetworks), rateLimit, rateWindow,
		cr.Remaining, cr.RefillAmount, cr.RefillInterval, cr.RefillDay, cr.RefilledAt,
	}
}

// narrowUpdates: UpdateKey may run rotateKeySQL (a test turns it off to
// hold the two statements to the same rows).
var narrowUpdates = true

// rotateKeyArgs: rotateKeySQL takes updateArgs' first twelve (it uses ?2,
// ?8 to ?12).
const rotateKeyArgs = 12

// onlySecretChanged says whether updateKeySQL for k would leave every
// column that rotateKeySQL does not write as it is in read's row: read is
// the row as the unit read it (Tx.Key), and nothing of the unit wrote it
// since. Each comparison is of what updateArgs binds (the same text, time
// or number), without encoding read again. The name key must be the stored
// one (not NULL: a row an older binary wrote gets its key from
// updateKeySQL), so name_released stays too.
func onlySecretChanged(read, k *apikey.Key) bool {
	if read.NameKey == "" || read.NameKey != k.NameKey || read.Name != k.Name ||
		read.Status != k.Status || read.Deleted != k.Deleted ||
		!sameTime(read.ExpiresAt, k.ExpiresAt) ||
		!slices.Equal(read.AllowedNetworks, k.AllowedNetworks) ||
		!maps.Equal(read.Metadata, k.Metadata) ||
		!maps.EqualFunc(read.Permissions, k.Permissions, sameActions) {
		return false
	}
	rl, rw := store.EncodeRateLimit(read.RateLimit)
	kl, kw := store.EncodeRateLimit(k.RateLimit)
	if rl != kl || rw != kw {
		return false
	}
	if read.Credits == nil || k.Credits == nil {
		return read.Credits == k.Credits
	}
	rc, kc := store.EncodeCredits(read.Credits), store.EncodeCredits(k.Credits)
	return *rc.Remaining == *kc.Remaining && rc.RefillAmount == kc.RefillAmount && rc.RefillInterval == kc.RefillInterval &&
		rc.RefillDay == kc.RefillDay && rc.RefilledAt == kc.RefilledAt
}

// rotatedRow is the row rotateKeySQL leaves when it rotates read's row to
// k's secret: read's columns, and those the statement sets as a read of the
// row returns them (scanKey: times parsed back from their text, an empty
// hash or hint stored as NULL). TestRotatedRowIsRead holds it to the row.
func rotatedRow(read, k *apikey.Key) (*apikey.Key, error) {
	row := cloneKey(read)
	row.SecretHash = slices.Clone(k.SecretHash)
	row.PrevSecretHash = nil
	if len(k.PrevSecretHash) > 0 {
		row.PrevSecretHash = slices.Clone(k.PrevSecretHash)
	}
	var err error
	if row.UpdatedAt, err = parseTime(fmtTime(k.UpdatedAt)); err != nil {
		return nil, err
	}
	row.PrevSecretExpiresAt = nil
	if k.PrevSecretExpiresAt != nil {
		exp, err := parseTime(fmtTime(*k.PrevSecretExpiresAt))
		if err != nil {
			return nil, err
		}
		row.PrevSecretExpiresAt = &exp
	}
	row.KeyHint = k.KeyHint
	return row, nil
}

// sameTime: a and b are stored as the same text (fmtTimePtr).
func sameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return fmtTime(*a) == fmtTime(*b)
}

// sameActions: a and b encode as the same JSON (nil is null, empty is []).
func sameActions(a, b []string) bool {
	return (a == nil) == (b == nil) && slices.Equal(a, b)
}

func mapInsertErr(err error) error {
	var se *sqlite3.Error
	if errors.As(err, &se) && se.Code() == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY {
		return store.ErrNoAccount // the foreign keys are account_id's (api_keys, audit_events)
	}
	if isUnique(err) {
		// api_keys.name_key (00009) or api_keys.name (00003), which an
		// older binary's rows without a name key still rely on.
		if strings.Contains(err.Error(), "api_keys.name") {
			return store.ErrDuplicateName
		}
		return store.ErrDuplicateKeyID
	}
	return err
}

const keyColumns = `id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
	last_used_at, last_used_ip, expires_at, created_at, updated_at, prev_secret_hash, prev_secret_expires_at,
	created_by_kind, created_by_id, created_by_request, key_hint, name_key, allowed_networks, rate_limit, rate_window_seconds,
	` + creditColumns

// creditColumns are a key's credits (migration 00014), as scanCredits reads them.
const creditColumns = `credits_remaining, credits_refill_amount, credits_refill_interval, credits_refill_day, credits_refilled_at`

// GetKey reads the key as one text (joinedKeyColumns), or column by column
// when that text does not split into its columns.
func (r *Repo) GetKey(ctx context.Context, id string) (_ *apikey.Key, err error) {
	defer classify(&err)
	if k, done, err := r.fastGetKey(ctx, id); done {
		return k, err
	}
	var row string
	err = r.getKeyJoined.QueryRowContext(ctx, id).Scan(&row)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	k, ok, err := scanJoinedKey(row, nil)
	if ok {
		return k, err
	}
	return scanKey(r.getKey.QueryRowContext(ctx, id))
}

func (r *Repo) KeyBySecretHash(ctx context.Context, hash []byte) (_ *apikey.Key, err error) {
	defer classify(&err)
	if k, done, err := r.fastKeyBySecretHash(ctx, hash); done {
		return k, err
	}
	return scanKey(r.byHash.QueryRowContext(ctx, hash))
}

// managedKeysSQL is ListManagedKeys' statement.
const managedKeysSQL = `SELECT ` + keyColumns + ` FROM api_keys
	WHERE account_id = ? AND managed = 1 AND deleted = 0 ORDER BY type DESC, id`

func (r *Repo) ListManagedKeys(ctx context.Context, accountID string) (_ []*apikey.Key, err error) {
	defer classify(&err)
	rows, err := r.rdb.QueryContext(ctx, managedKeysSQL, accountID)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	var out []*apikey.Key
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RecordUsage is a write like any other: a unit of the writer's batch. Its
// updates run in key id order (a stable sort: a key's uses keep their
// order, so the outcome is the batch's applied in order), so that the
// probes of the id index walk its pages in order instead of at random, and
// so do the table's pages where rowids follow ids (keys inserted in id
// order, as seed does): a flush of 30 000 keys among a million ~34 → ~28 µs
// CPU per key (BenchmarkRecordUsageSeeded), most of it the pages each
// update dirties (read, saved in the unit's savepoint journal, written to
// the WAL, checkpointed).
func (r *Repo) RecordUsage(ctx context.Context, batch []store.Usage) (err error) {
	defer classify(&err)
	if len(batch) == 0 {
		return nil
	}
	byID := func(a, b store.Usage) int { return strings.Compare(a.KeyID, b.KeyID) }
	// auth.UsageTracker hands its batches sorted already: checking costs
	// one comparison per key, where the stable sort of a flush of ~50 000
	// keys took ~1 µs of CPU per key.
	if !slices.IsSortedFunc(batch, byID) {
		batch = slices.Clone(batch) // the caller's, not to be reordered
		slices.SortStableFunc(batch, byID)
	}
	return r.InTx(ctx, func(stx store.Tx) error {
		t := stx.(*tx) // InTx hands its fn this package's tx, always
		for _, u := range batch {
			at := fmtTime(u.At)
			t.w.keys.wrote(u.KeyID)
			if err := t.exec(ctx, t.w.st.recordUsage, at, u.IP, u.KeyID, at); err != nil {
				return err
			}
		}
		return nil
	})
}

// statusExpired is the list filter for ACTIVE keys past their expiry (a
// status computed at read time, never stored).
const statusExpired = "EXPIRED"

// ListKeys pages in (created_at, id) order from the cursor on (keyset
// pagination: keys created or deleted between pages move no other key
// across the page boundary). created_at compares as fixed-width text and ids
// bytewise (BINARY), as PostgreSQL's COLLATE "C" does. Each combination of
// filters is a statement of its own, prepared once (listKeysSQL).
func (r *Repo) ListKeys(ctx context.Context, f store.KeyFilter) (_ []*apikey.Key, err error) {
	defer classify(&err)
	if f.Limit <= 0 {
		return nil, fmt.Errorf("sqlite: list keys: limit %d, want at least 1", f.Limit)
	}
	// The parameters are numbered (see listKeysSQL); those a shape does not
	// use are bound to NULL.
	var (
		shape int
		args  [10]any
	)
	args[0], args[1], args[9] = f.AccountID, f.Deleted, f.Limit
	switch f.Status {
	case "":
	case apikey.StatusActive:
		shape, args[2], args[3] = listActive, apikey.StatusActive, fmtTime(f.Now)
	case statusExpired:
		shape, args[2], args[3] = listExpired, apikey.StatusActive, fmtTime(f.Now)
	case apikey.StatusInactive:
		shape, args[2] = listInactive, apikey.StatusInactive
	default:
		return nil, fmt.Errorf("sqlite: list keys: unknown status %q", f.Status)
	}
	if f.Type != "" {
		shape |= listType
		args[4] = f.Type
	}
	if f.Managed != nil {
		shape |= listManaged
		args[5] = *f.Managed
	}
	if f.CreatedBy != "" {
		shape |= listCreatedBy
		args[6] = f.CreatedBy
	}
	if f.After != nil {
		shape |= listAfter
		args[7], args[8] = fmtTime(f.After.CreatedAt), f.After.ID
	}
	size := min(f.Limit, 101)
	if shape == 0 || shape == listAfter {
		if out, done, err := r.fastListKeys(ctx, shape, &args, size); done {
			return out, err
		}
	}
	st, err := r.listKeys.stmt(ctx, shape) //nolint:sqlclosecheck // shapes keeps it
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args[:]...)
	if err != nil {
		return nil, err
	}
	if out, ok, err := scanJoinedKeys(rows, size); ok || err != nil {
		return out, err
	}
	// A key of the page is to be read column by column: the page is.
	if st, err = r.listKeys.stmt(ctx, shape|listByColumn); err != nil { //nolint:sqlclosecheck // shapes keeps it
		return nil, err
	}
	if rows, err = st.QueryContext(ctx, args[:]...); err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	out := make([]*apikey.Key, 0, size)
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// The shapes of ListKeys: the status filter (0 for none) in the low two
// bits, a bit per other filter, and one for the statement that reads the
// columns one by one (scanJoinedKey's fallback).
const (
	listActive = 1 + iota
	listExpired
	listInactive
	listType      = 1 << 2
	listManaged   = 1 << 3
	listCreatedBy = 1 << 4
	listAfter     = 1 << 5
	listByColumn  = 1 << 6
	listShapes    = 1 << 7
)

// listKeysSQL is the text of a ListKeys shape. Parameters: ?1 account, ?2
// deleted, ?3 status, ?4 now, ?5 type, ?6 managed, ?7 creator, ?8 and ?9 the
// cursor's created_at and id, ?10 the limit.
func listKeysSQL(shape int) string {
	q := `SELECT ` + joinedKeyColumns + ` FROM api_keys WHERE account_id = ?1 AND deleted = ?2`
	if shape&listByColumn != 0 {
		q = `SELECT ` + keyColumns + ` FROM api_keys WHERE account_id = ?1 AND deleted = ?2`
	}
	switch shape & 3 {
	case listActive:
		q += ` AND status = ?3 AND (expires_at IS NULL OR expires_at > ?4)`
	case listExpired:
		q += ` AND status = ?3 AND expires_at <= ?4`
	case listInactive:
		q += ` AND status = ?3`
	}
	if shape&listType != 0 {
		q += ` AND type = ?5`
	}
	if shape&listManaged != 0 {
		q += ` AND managed = ?6`
	}
	if shape&listCreatedBy != 0 {
		q += ` AND created_by_id = ?7`
	}
	if shape&listAfter != 0 {
		q += ` AND (created_at, id) > (?8, ?9)`
	}
	return q + ` ORDER BY created_at, id LIMIT ?10`
}

type scanner interface{ Scan(...any) error }

func scanKey(row scanner) (*apikey.Key, error) {
	var (
		k                     apikey.Key
		perms, meta           string
		lastUsedAt, expiresAt sql.NullString
		prevExpiresAt         sql.NullString
		lastUsedIP, keyHint   sql.NullString
		nameKey               sql.NullString
		createdAt, updatedAt  string
		networks              string
		rateLimit, rateWindow int64
		cr                    store.CreditColumns
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Type, &k.SecretHash, &perms, &meta, &k.Status,
		&k.Managed, &k.Deleted, &lastUsedAt, &lastUsedIP, &expiresAt, &createdAt, &updatedAt,
		&k.PrevSecretHash, &prevExpiresAt, &k.CreatedBy.Kind, &k.CreatedBy.ID, &k.CreatedBy.RequestID, &keyHint, &nameKey, &networks, &rateLimit, &rateWindow,
		&cr.Remaining, &cr.RefillAmount, &cr.RefillInterval, &cr.RefillDay, &cr.RefilledAt)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if k.Permissions, err = keymaps.Permissions(perms); err != nil {
		return nil, fmt.Errorf("sqlite: key %s permissions: %w", k.ID, err)
	}
	if k.Metadata, err = keymaps.Metadata(meta); err != nil {
		return nil, fmt.Errorf("sqlite: key %s metadata: %w", k.ID, err)
	}
	if k.AllowedNetworks, err = store.DecodeNetworks(networks); err != nil {
		return nil, fmt.Errorf("sqlite: key %s allowed_networks: %w", k.ID, err)
	}
	k.RateLimit = store.DecodeRateLimit(rateLimit, rateWindow)
	if k.Credits, err = cr.Decode(); err != nil {
		return nil, fmt.Errorf("sqlite: key %s: %w", k.ID, err)
	}
	if k.CreatedAt, err = parseTime(createdAt); err != nil {
		return nil, err
	}
	if k.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		src sql.NullString
		dst **time.Time
	}{{lastUsedAt, &k.LastUsedAt}, {expiresAt, &k.ExpiresAt}, {prevExpiresAt, &k.PrevSecretExpiresAt}} {
		if p.src.Valid {
			t, err := parseTime(p.src.String)
			if err != nil {
				return nil, err
			}
			*p.dst = &t
		}
	}
	if lastUsedIP.Valid {
		k.LastUsedIP = &lastUsedIP.String
	}
	k.KeyHint = keyHint.String // NULL: a key from before hints were kept
	// NULL: written by a binary from before 00009; the next open fills it.
	k.NameKey = nameKey.String
	return &k, nil
}

func encodeMaps(k *apikey.Key) (string, string, error) {
	if k.Permissions == nil {
		k.Permissions = map[string][]string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	p, err := json.Marshal(k.Permissions)
	if err != nil {
		return "", "", err
	}
	m, err := json.Marshal(k.Metadata)
	return string(p), string(m), err
}

// nullIfEmpty stores an absent hint as NULL, as keys from before hints were kept have it.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// nilIfEmpty stores an absent hash as NULL, which the partial unique index skips.
func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

func isUnique(err error) bool {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		return se.Code() == sqlite3lib.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3lib.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
