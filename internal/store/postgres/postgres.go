// Package postgres is the PostgreSQL store: one database, one schema per mode
// (hsrcpay_live, hsrcpay_test), queries through a pgx connection pool, and
// goose migrations embedded in the binary and applied to each schema under a
// PostgreSQL advisory lock so that replicas starting together do not race.
//
// Every query names its schema explicitly, so the search_path of the
// connection URL does not matter. PostgreSQL keeps timestamps to the
// microsecond: Tx.InsertKey and Tx.UpdateKey truncate the key's timestamps to
// microseconds in UTC (the values that are stored), and reads return UTC.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/keymaps"
	"github.com/hsrcpay/apikeys/internal/store/internal/namerow"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Schemas maps each mode to its schema. Live and sandbox data never share a table.
var Schemas = map[apikey.Mode]string{apikey.Live: "hsrcpay_live", apikey.Sandbox: "hsrcpay_test"}

// migrationLockKey is the pg_advisory_lock key held while migrating. Advisory
// locks are per database, so this only serializes hsrcpay instances sharing one.
const migrationLockKey int64 = 0x6873726370617931 // "hsrcpay1"

// Store keeps both modes in one PostgreSQL database.
type Store struct {
	pool  *pgxpool.Pool
	repos map[apikey.Mode]*Repo
	// instance names this open (a replica): the holder its idempotency
	// claims carry. Replicas share the database, so no instance is ever
	// known to be gone; its leases, renewed while it lives, say so.
	instance string
}

// Open connects to the database url names (postgres://… or key=value; pgxpool
// settings such as pool_max_conns are honoured), creates the mode schemas if
// missing and applies migrations to each.
func Open(ctx context.Context, url string) (*Store, error) { return OpenOptions(ctx, url, Options{}) }

// Options tune the connection pool.
type Options struct {
	// Timeout (default store.DefaultTimeout) is what a frozen or overloaded
	// server may cost: it bounds connecting (connect_timeout), each statement
	// on the server (statement_timeout: a query stuck behind a lock or a full
	// disk ends there, releasing its connection) and a transaction left idle
	// by a client that vanished mid-unit (idle_in_transaction_session_timeout,
	// twice Timeout: its row locks are freed). Settings the URL names win.
	// The server bounds each call on the client side too (store.WithTimeout).
	Timeout time.Duration
	// Schema is what Open does about the schemas' version (default: apply
	// the pending migrations, which needs a role that may change them).
	Schema store.SchemaPolicy
}

// OpenOptions is Open with options.
func OpenOptions(ctx context.Context, url string, opt Options) (*Store, error) {
	if opt.Timeout <= 0 {
		opt.Timeout = store.DefaultTimeout
	}
	return openSchema(ctx, url, nil, opt.Timeout, opt.Schema)
}

// bounded applies Options.Timeout to cfg where the URL set nothing.
func bounded(cfg *pgxpool.Config, d time.Duration) {
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = d
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	for k, v := range map[string]string{"statement_timeout": ms(d), "idle_in_transaction_session_timeout": ms(2 * d)} {
		if _, set := cfg.ConnConfig.RuntimeParams[k]; !set {
			cfg.ConnConfig.RuntimeParams[k] = v
		}
	}
}

// DefaultMaxConns is the pool's size unless the URL sets pool_max_conns.
// pgxpool's own default, max(4, NumCPU), suits CPU-bound queries; a unit of
// work here is bound by round trips and row locks instead: it holds its
// connection for its round trips (2 for a create, 3 for a regenerate, once
// 6) and its commit's WAL flush, and on a busy account also while it waits
// for the account's row (every change to an account appends to its audit
// chain). With 4 connections, four writes queued on one account held them
// all, and every other account's writes and every key lookup of the replica
// waited behind them (BenchmarkRegenerateBesideHotAccount, 16 creates on a
// hot account: a regenerate elsewhere took 5.2 ms with 4 connections, 1.2 ms
// with 32). Replicas × pool_max_conns must stay under PostgreSQL's
// max_connections (100 by default).
const DefaultMaxConns = 32

// open is Open with a last say on the pool's configuration (tests trace
// the queries).
func open(ctx context.Context, url string, tune func(*pgxpool.Config), timeout time.Duration) (*Store, error) {
	return openSchema(ctx, url, tune, timeout, store.SchemaMigrate)
}

func openSchema(ctx context.Context, url string, tune func(*pgxpool.Config), timeout time.Duration, schema store.SchemaPolicy) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if !strings.Contains(url, "pool_max_conns") { // ParseConfig does not say whether it was set
		cfg.MaxConns = DefaultMaxConns
	}
	if tune != nil {
		tune(cfg)
	}
	// Migrations run without the pool's timeouts: building an index on a
	// large table may take longer than any request should.
	if schema == store.SchemaMigrate {
		err = migrate(ctx, cfg.ConnConfig)
	} else {
		err = check(ctx, cfg.ConnConfig, schema)
	}
	if err != nil {
		return nil, err
	}
	bounded(cfg, timeout)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: ping: %w", err)
	}
	s := &Store{pool: pool, repos: map[apikey.Mode]*Repo{}, instance: newInstanceID()}
	for _, m := range apikey.Modes {
		s.repos[m] = newRepo(pool, m)
		s.repos[m].instance = s.instance
	}
	return s, nil
}

// nameKeySQL fills the name keys that 00009 could not (see namerow); the
// names are unqualified, under the schema's search_path.
var nameKeySQL = namerow.SQL{
	Missing: `SELECT id, account_id, name, NOT deleted AND NOT name_released FROM api_keys
		WHERE name_key IS NULL ORDER BY created_at, id`,
	Taken: `SELECT count(*) FROM api_keys WHERE account_id = $1 AND name_key = $2 AND NOT deleted AND NOT name_released`,
	Set:   `UPDATE api_keys SET name_key = $1 WHERE id = $2`,
}

func (s *Store) Repo(m apikey.Mode) store.Repository { return s.repos[m] }

// Instance implements store.Instanced.
func (s *Store) Instance() string { return s.instance }

// Pool exposes the connection pool for tests and tooling.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

func (s *Store) Ping(ctx context.Context) error { return unavailable(s.pool.Ping(ctx)) }

// PingWrite commits a transaction that is given a transaction id
// (txid_current: a standby or a server shutting down refuses, the commit
// writes WAL) and checks that the session may write (not read-only, e.g.
// default_transaction_read_only during a migration or failover). It touches
// no table (both modes share the database, so one probe answers for both).
// A data disk that is full shows in the writes themselves (53100), which the
// server's readiness also watches.
func (s *Store) PingWrite(ctx context.Context) error {
	var (
		id       int64
		readOnly bool
	)
	err := s.pool.QueryRow(ctx, `SELECT txid_current(), current_setting('transaction_read_only') = 'on'`).Scan(&id, &readOnly)
	if err == nil && readOnly {
		err = store.Unavailable(errReadOnly)
	}
	return unavailable(err)
}

var errReadOnly = errors.New("postgres: the session is read-only")

func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Repo is one mode's schema.
type Repo struct {
	pool     *pgxpool.Pool
	mode     apikey.Mode // what the events appended here belong to
	q        queries
	instance string // the Store's: the holder of the claims written here
	spends   spendGroups
}

type queries struct {
	createAccount, accountExists, deleteAccountEvents, deleteAccountKeys, deleteAccount, insertKey, getKey,
	keyBySecretHash, listManaged, getKeyForUpdate, getKeyForShare, capReached, capCounted, lockAccount, lockAccountQueued, releaseName, updateKey, recordUsage, creditsForUpdate, setCredits string
	// listKeys and listEvents are the lists' SELECT … WHERE account_id = $1,
	// which the filters extend.
	listKeys, listEvents, auditChain, auditAccounts, appendEvent, appendSealed string
}

// insertColumns are what InsertKey writes: a new key has no previous secret.
const insertColumns = `id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
	last_used_at, last_used_ip, expires_at, created_at, updated_at, created_by_kind, created_by_id, created_by_request,
	key_hint, name_key, allowed_networks, rate_limit, rate_window_seconds,
	` + creditColumns

// creditColumns are a key's credits (migration 00014), read into a store.CreditColumns.
const creditColumns = `credits_remaining, credits_refill_amount, credits_refill_interval, credits_refill_day, credits_refilled_at`

const keyColumns = insertColumns + `, prev_secret_hash, prev_secret_expires_at`

const eventColumns = `account_id, seq, id, mode, action, key_id, actor_kind, actor_id, request_id,
	client_ip, created_at, changes`

// eventSelect reads changes as text, which auditrow.DecodeString reads.
const eventSelect = `account_id, seq, id, mode, action, key_id, actor_kind, actor_id, request_id,
	client_ip, created_at, changes::text, prev_hash, hash`

func newRepo(pool *pgxpool.Pool, mode apikey.Mode) *Repo {
	schema := Schemas[mode]
	accounts := pgx.Identifier{schema, "accounts"}.Sanitize()
	keys := pgx.Identifier{schema, "api_keys"}.Sanitize()
	events := pgx.Identifier{schema, "audit_events"}.Sanitize()
	return &Repo{pool: pool, mode: mode, q: queries{
		createAccount:       `INSERT INTO ` + accounts + ` (id, created_at) VALUES ($1, $2)`,
		accountExists:       `SELECT EXISTS (SELECT 1 FROM ` + accounts + ` WHERE id = $1)`,
		deleteAccountEvents: `DELETE FROM ` + events + ` WHERE account_id = $1`,
		deleteAccountKeys:   `DELETE FROM ` + keys + ` WHERE account_id = $1`,
		deleteAccount:       `DELETE FROM ` + accounts + ` WHERE id = $1`,
		insertKey: `INSERT INTO ` + keys + ` (` + insertColumns + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)`,
		// The counter of keys not deleted (migration 00008) while below the cap;
		// else an index-only walk of api_keys_active (migration 00005), at most
		// $3 entries. The subquery is an InitPlan, run only when CASE takes it.
		capReached: `SELECT CASE WHEN live_keys < $3 THEN FALSE ELSE (SELECT count(*) FROM (SELECT 1 FROM ` + keys + `
			WHERE account_id = $1 AND NOT deleted AND (expires_at IS NULL OR expires_at > $2) LIMIT $3) AS active) >= $3 END
			FROM ` + accounts + ` WHERE id = $1`,
		// capReached without the counter, after the unit's own writes of
		// keys: live_keys counts them only at COMMIT (migration 00011).
		capCounted: `SELECT (SELECT count(*) FROM (SELECT 1 FROM ` + keys + `
			WHERE account_id = $1 AND NOT deleted AND (expires_at IS NULL OR expires_at > $2) LIMIT $3) AS active) >= $3
			FROM ` + accounts + ` WHERE id = $1`,
		releaseName: `UPDATE ` + keys + ` SET name_released = TRUE
			WHERE account_id = $1 AND name_key = $2 AND NOT deleted AND NOT name_released
			AND expires_at IS NOT NULL AND expires_at <= $3`,
		getKey: `SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE id = $1`,
		// A key by its current secret's hash, or else by its previous one's
		// (whether that grace period has ended is the caller's call): one
		// probe of each unique index, as in the SQLite store. The second arm
		// yields a row only when no key has the hash as its current secret,
		// so at most one row comes back and the current secret wins
		// (storetest LookupCurrentSecretWins); LIMIT 1 stops the Append
		// after the first arm's row, so a current secret costs one probe.
		// The statement it replaces (OR, ORDER BY the current secret first)
		// ran a BitmapOr of both indexes and a sort for every lookup.
		keyBySecretHash: `SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE secret_hash = $1
			UNION ALL
			SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE prev_secret_hash = $1
				AND NOT EXISTS (SELECT 1 FROM ` + keys + ` WHERE secret_hash = $1)
			LIMIT 1`,
		// COLLATE "C" orders ids bytewise, as SQLite does, whatever the database's collation.
		listManaged: `SELECT ` + keyColumns + ` FROM ` + keys + `
			WHERE account_id = $1 AND managed AND NOT deleted ORDER BY type COLLATE "C" DESC, id COLLATE "C"`,
		getKeyForUpdate: `SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE id = $1 FOR UPDATE`,
		getKeyForShare:  `SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE id = $1 FOR SHARE`,
		updateKey: `UPDATE ` + keys + ` SET name = $1, secret_hash = $2, permissions = $3, metadata = $4,
			status = $5, deleted = $6, expires_at = $7, updated_at = $8,
			prev_secret_hash = $9, prev_secret_expires_at = $10, key_hint = $11, name_key = $13, allowed_networks = $14, rate_limit = $15, rate_window_seconds = $16,
			credits_remaining = $17, credits_refill_amount = $18, credits_refill_interval = $19, credits_refill_day = $20, credits_refilled_at = $21,
			-- A key that takes a new name (a new name key, 00009) holds it again, so the
			-- unique index applies to it.
			name_released = CASE WHEN name_key IS NOT DISTINCT FROM $13 THEN name_released ELSE FALSE END WHERE id = $12`,
		recordUsage: `UPDATE ` + keys + ` SET last_used_at = $1, last_used_ip = $2
			WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)`,
		creditsForUpdate: `SELECT ` + creditColumns + ` FROM ` + keys + ` WHERE id = $1 FOR UPDATE`,
		setCredits:       `UPDATE ` + keys + ` SET credits_remaining = $2, credits_refilled_at = $3 WHERE id = $1`,
		listKeys:         `SELECT ` + keyColumns + ` FROM ` + keys + ` WHERE account_id = $1`,
		listEvents:       `SELECT ` + eventSelect + ` FROM ` + events + ` WHERE account_id = $1`,
		auditChain:       `SELECT ` + eventSelect + ` FROM ` + events + ` WHERE account_id = $1 ORDER BY seq`,
		auditAccounts:    `SELECT id, audit_seq, audit_head FROM ` + accounts + ` ORDER BY id COLLATE "C"`,
		// LockAccount's lock, which reads the audit chain's head as it takes
		// it; AppendAuditEvent reads it so (FOR UPDATE again) only for an
		// account the unit has not locked, keeping appends to one chain
		// serial even for a caller that forgot.
		// LockAccount's: the head, and the count of keys not deleted for
		// KeyCapReached (below the cap, it needs no round trip of its own).
		// FOR NO KEY UPDATE, as an UPDATE of the row takes: it does not wait
		// for the key share lock that a unit's insert of a key takes on its
		// account (the foreign key's check) before the unit locks the
		// account at its end (see LockAccount), which FOR UPDATE would, each
		// of two such units then waiting for the other.
		lockAccount: `SELECT audit_seq, audit_head, live_keys FROM ` + accounts + ` WHERE id = $1 FOR NO KEY UPDATE`,
		// AppendAuditEvent's when the head is not known here (see there): the
		// server reads it, seals the event ($12 and $13 around the seq and the
		// head's hash: audit.Event.SealParts), stores it and moves the head.
		// '\x227d' is '"}', the canonical form's end.
		// It takes the account's lock when the unit's LockAccount was
		// deferred to it, and then checks what lockAccountQueued checks
		// ($14: KeyCapReached's limit, or NULL), failing the batch alike
		// (the WHERE reads both checks, so that they are computed).
		appendSealed: `WITH head AS (SELECT max(audit_seq) + 1 AS seq, max(audit_head) AS prev, 1 / count(*)::int AS present,
				ln(max(CASE WHEN $14::bigint IS NULL OR live_keys < $14::bigint THEN 1 ELSE 0 END)) AS below
				FROM (SELECT audit_seq, audit_head, live_keys FROM ` + accounts + ` WHERE id = $1 FOR NO KEY UPDATE) AS locked),
			sealed AS (SELECT seq, prev, encode(sha256($12::bytea || convert_to(seq::text, 'UTF8') || $13::bytea
				|| convert_to(prev, 'UTF8') || '\x227d'::bytea), 'hex') AS hash FROM head WHERE present = 1 AND below = 0),
			event AS (INSERT INTO ` + events + ` (` + eventColumns + `, prev_hash, hash)
				SELECT $1, seq, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, prev, hash FROM sealed)
			UPDATE ` + accounts + ` SET audit_seq = sealed.seq, audit_head = sealed.hash FROM sealed WHERE id = $1
			RETURNING sealed.seq, sealed.prev, sealed.hash`,
		// LockAccount's when queued: the same, but a missing account fails
		// the batch (1/0: no statement after it runs, COMMIT included), and
		// so does a count of keys not deleted at or above $2 when
		// KeyCapReached set it (ln(0)). Over no row the aggregates give one
		// row of NULLs and a count of 0.
		lockAccountQueued: `SELECT max(audit_seq), max(audit_head), max(live_keys), 1 / count(*)::int,
			ln(max(CASE WHEN $2::bigint IS NULL OR live_keys < $2::bigint THEN 1 ELSE 0 END))
			FROM (SELECT audit_seq, audit_head, live_keys FROM ` + accounts + ` WHERE id = $1 FOR NO KEY UPDATE) AS locked`,
		// The event and the head it becomes, in one statement (one round
		// trip while the account's row is locked). A data-modifying WITH
		// runs whether or not the UPDATE reads it.
		appendEvent: `WITH event AS (INSERT INTO ` + events + ` (` + eventColumns + `, prev_hash, hash)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14))
			UPDATE ` + accounts + ` SET audit_seq = $2, audit_head = $14 WHERE id = $1`,
	}}
}

// pgTime is t as PostgreSQL stores it: UTC, microseconds.
func pgTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func pgTimePtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := pgTime(*t)
	return &v
}

func (r *Repo) AccountExists(ctx context.Context, id string) (_ bool, err error) {
	defer classify(&err)
	var ok bool
	err = r.pool.QueryRow(ctx, r.q.accountExists, id).Scan(&ok)
	return ok, err
}

// InTx runs fn in one READ COMMITTED transaction; what fn reads through the
// Tx is locked (FOR UPDATE) until commit, so checks made on it still hold
// when the change commits.
//
// Every round trip inside the transaction is time its locks are held, and
// every change to one account waits for its row (the audit chain's head):
// so BEGIN travels with the unit's first statement (one pipelined round
// trip, not two), writes travel with the statement after them or with
// COMMIT (queue), LockAccount is deferred to the unit's event (which takes
// the lock, seals the event where it reads the head, and checks the cap for
// KeyCapReached) or its next read, live_keys and a key's foreign key are
// kept at COMMIT (migration 00011), so the account's row is held from the
// unit's last statement only, and COMMIT releases the
// locks before the WAL flush that InTx still waits for (commit).
func (r *Repo) InTx(ctx context.Context, fn func(store.Tx) error) (err error) {
	defer classify(&err)
	err = r.inTx(ctx, fn, false)
	if errors.Is(err, errCapGuard) {
		// The account stood at its cap or above when the unit locked it
		// (see KeyCapReached): run it again, counting under the lock
		// before anything is written, as the unit asked. Nothing of the
		// first run committed.
		err = r.inTx(ctx, fn, true)
	}
	return err
}

// inTx runs fn in one transaction. pessimistic: LockAccount takes the lock
// at once, so that KeyCapReached answers from the locked row (see it).
func (r *Repo) inTx(ctx context.Context, fn func(store.Tx) error, pessimistic bool) error {
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	// A connection left inside a transaction (a ROLLBACK that failed) is
	// destroyed by Release, never reused.
	defer conn.Release()
	t := &tx{q: &r.q, mode: r.mode, conn: conn, instance: r.instance, pessimistic: pessimistic}
	defer func() {
		if t.begun && !t.closed {
			t.closed = true
			// After a failure, fn's error is the one to report.
			_, _ = conn.Exec(context.WithoutCancel(ctx), "rollback")
		}
	}()
	if err := fn(t); err != nil {
		return err
	}
	if !t.begun && len(t.pending) == 0 && len(t.deferred) == 0 {
		t.closed = true
		return ctx.Err() // fn ran no statement: nothing to commit
	}
	// The statements still pending travel with COMMIT: one round trip.
	tag, err := t.commit(ctx)
	if err != nil {
		// Still to roll back (closed is false): a pending statement that
		// failed left the transaction aborted, the COMMIT behind it skipped.
		var pf *pendingFailed
		if errors.As(err, &pf) {
			return pf.err // the server's answer: nothing committed
		}
		// mapErr: a deferred constraint's failure at COMMIT (a key's
		// missing account, migration 00011).
		return mapErr(commitFailed(err))
	}
	t.closed = true
	if tag.String() == "ROLLBACK" { // a statement failed, and fn went on regardless
		return pgx.ErrTxCommitRollback
	}
	return nil
}

// tx is one unit of work on a Repo.
type tx struct {
	q        *queries
	mode     apikey.Mode
	conn     *pgxpool.Conn
	instance string // the holder of the claims this unit writes
	// begun: BEGIN has been sent, with the first statement. closed: the unit
	// is over; a Tx kept past it must not run statements outside it.
	begun, closed bool
	// pending are statements whose outcome fn does not wait for (see
	// queue): sent ahead of the unit's next statement, or with COMMIT, in
	// the same round trip.
	pending []queued
	// locking: accounts whose lock (LockAccount) is queued, not yet read;
	// their heads are known only to the statements after it, so events
	// appended meanwhile are sealed by the server (AppendAuditEvent).
	// pessimistic: LockAccount locks at once (see Repo.InTx).
	locking     map[string]int // its index in pending
	pessimistic bool
	// deferred: accounts whose lock (LockAccount) waits for the unit's
	// next statement that reads, or for its first event on the account
	// (appendSealed), or for COMMIT, with the limit KeyCapReached had the
	// lock check (see there).
	deferred map[string]*deferredLock
	// serverSealed counts, per account, the events sealed by the server
	// (see AppendAuditEvent) not read back yet: the head this unit knows
	// is behind them.
	serverSealed map[string]int
	// heads are the audit chains' heads of the accounts this unit locked:
	// the row lock keeps them current until commit, so AppendAuditEvent
	// needs no round trip to read them.
	heads map[string]auditHead
	// liveKeys is accounts.live_keys of liveAccount as LockAccount read it
	// (the lock keeps it current), until this unit writes a key.
	liveAccount string
	liveKeys    int64
	// keyWrites counts the unit's writes of keys (which change live_keys):
	// a queued lock's read of live_keys is the count only if none was
	// queued after it.
	keyWrites int
}

// queued is a pending statement. read, if set, reads its result (else it
// is executed); fail, if set, turns the server's error into the call's.
type queued struct {
	sql  string
	args []any
	read func(pgx.BatchResults) error
	fail func(*pgconn.PgError) error
}

// pendingFailed is a pending statement's failure, as its call would have
// returned it: the server answered, so nothing after it in the batch ran
// (not the COMMIT either).
type pendingFailed struct{ err error }

func (p *pendingFailed) Error() string { return p.err.Error() }
func (p *pendingFailed) Unwrap() error { return p.err }

// deferredLock is an account's lock not sent yet. limit: KeyCapReached's
// (an int64), checked where the lock is taken; nil: none.
type deferredLock struct{ limit any }

type auditHead struct {
	seq  int64
	hash string
}

var (
	_ store.Repository        = (*Repo)(nil)
	_ store.IdempotencyReader = (*Repo)(nil)
	_ store.Tx                = (*tx)(nil)
	_ store.KeySharer         = (*tx)(nil)
	_ store.KeysLocker        = (*tx)(nil)
)

// errTxClosed is what a Tx used after its unit ended gets.
var errTxClosed = pgx.ErrTxClosed

// execTag runs a statement of the unit and returns its command tag.
func (t *tx) execTag(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	switch {
	case t.closed:
		return pgconn.CommandTag{}, errTxClosed
	case t.begun && len(t.pending) == 0 && len(t.deferred) == 0:
		return t.conn.Exec(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// exec runs a statement of the unit (execTag without the tag).
func (t *tx) exec(ctx context.Context, sql string, args ...any) error {
	_, err := t.execTag(ctx, sql, args...)
	return err
}

func (t *tx) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	switch {
	case t.closed:
		return errRow{errTxClosed}
	case t.begun && len(t.pending) == 0 && len(t.deferred) == 0:
		return t.conn.QueryRow(ctx, sql, args...)
	}
	br, err := t.send(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return batchRow{br}
}

// send sends, in one round trip, BEGIN if the unit has not begun, the
// pending statements, and sql (pipelined: PostgreSQL keeps the transaction
// open past the batch's end). It returns the batch with every result before
// sql's read: sql's is next. A pending statement's failure is returned
// (mapped: the error its own call would have had) and fails the unit.
func (t *tx) send(ctx context.Context, sql string, args ...any) (pgx.BatchResults, error) {
	br, err := t.sendRaw(ctx, sql, args...)
	var pf *pendingFailed
	if errors.As(err, &pf) {
		return nil, pf.err
	}
	return br, mapErr(err)
}

func (t *tx) sendRaw(ctx context.Context, sql string, args ...any) (pgx.BatchResults, error) {
	return t.sendBatch(ctx, queued{sql: sql, args: args})
}

// sendBatch is sendRaw for several statements after the pending ones: the
// batch is returned with the first of them next.
func (t *tx) sendBatch(ctx context.Context, tail ...queued) (pgx.BatchResults, error) {
	t.takeDeferred()
	b := &pgx.Batch{}
	n := len(t.pending)
	if !t.begun {
		b.Queue("begin")
		n++
	}
	t.begun = true
	for _, q := range t.pending {
		b.Queue(q.sql, q.args...)
	}
	pending := t.pending
	t.pending = nil
	for _, q := range tail {
		b.Queue(q.sql, q.args...)
	}
	br := t.conn.SendBatch(ctx, b)
	for i := range n {
		var q *queued
		if j := i - (n - len(pending)); j >= 0 {
			q = &pending[j]
		}
		var err error
		if q != nil && q.read != nil {
			err = q.read(br)
		} else {
			_, err = br.Exec()
		}
		if err != nil {
			_ = br.Close() // err, the first statement's that failed, is the one to report
			var pe *pgconn.PgError
			if q != nil && errors.As(err, &pe) {
				if q.fail != nil {
					if ferr := q.fail(pe); ferr != nil {
						err = ferr
					}
				}
				return nil, &pendingFailed{mapErr(err)}
			}
			return nil, err
		}
	}
	return br, nil
}

// flush sends the pending statements now (with a statement that does
// nothing, for the batch's last result).
func (t *tx) flush(ctx context.Context) error {
	if len(t.pending) == 0 && len(t.deferred) == 0 {
		return nil
	}
	_, err := t.execTag(ctx, "select")
	return err
}

// commit sends the pending statements and COMMIT in one round trip, and
// returns once the commit is durable.
//
// Every write to an account waits for its row, which a unit holds until its
// COMMIT returns: with synchronous_commit on, until the commit's WAL is
// flushed. So writes to one account ran one WAL flush after another (~1 ms
// each here, more on a busy disk), and that flush, not the work, bounded
// them. Instead the unit commits with synchronous_commit off (its locks go
// at once) and, in the same batch, runs a transaction that is given an xid
// (txid_current()) and commits synchronously: its commit waits for the WAL
// to be flushed up to its own commit record, which is after the unit's.
// Those flushes are shared: every unit committing meanwhile, on any account,
// waits on the same fsync (PostgreSQL's group commit), since the barriers
// lock nothing. InTx returns only then, so no answer is sent before its
// change is durable, as before. What changes is that another session may
// see the change up to one flush before it is durable; a crash in that
// window loses it with its answer unsent (the caller sees the outcome
// unknown, as when a connection drops after COMMIT), and WAL is replayed
// in order, so nothing that depended on it survives it either.
func (t *tx) commit(ctx context.Context) (pgconn.CommandTag, error) {
	t.pending = append(t.pending, queued{sql: "set local synchronous_commit = off", fail: func(pe *pgconn.PgError) error {
		if pe.Code == "25P02" { // in_failed_sql_transaction: a statement failed, and fn went on regardless
			return pgx.ErrTxCommitRollback
		}
		return nil
	}})
	br, err := t.sendBatch(ctx, queued{sql: "commit"}, queued{sql: "select txid_current()"})
	if err != nil {
		return pgconn.CommandTag{}, err // InTx maps a pending statement's failure
	}
	tag, err := br.Exec()
	if err == nil {
		// Committed, maybe not durable yet: a failure now leaves the
		// outcome unknown.
		if _, err = br.Exec(); err != nil {
			err = store.OutcomeUnknown(err)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = store.OutcomeUnknown(cerr)
	}
	return tag, err
}

// queue adds a statement to the ones sent ahead of the unit's next one (or
// with COMMIT), for a call whose caller does not wait for its outcome: one
// that has no answer and whose failure cannot be one the caller handles (it
// fails the unit, which InTx returns, as a failed statement would have).
func (t *tx) queue(ctx context.Context, sql string, args ...any) error {
	if t.closed {
		return errTxClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.pending = append(t.pending, queued{sql: sql, args: args})
	return nil
}

// queueRead is queue for a statement whose result read reads when it is
// sent, and whose server error fail maps (nil: mapErr's).
func (t *tx) queueRead(ctx context.Context, q queued) error {
	if t.closed {
		return errTxClosed
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	t.pending = append(t.pending, q)
	return nil
}

// batchRow is the first statement's row; scanning it ends the batch.
type batchRow struct{ br pgx.BatchResults }

func (r batchRow) Scan(dst ...any) error {
	err := r.br.QueryRow().Scan(dst...)
	if cerr := r.br.Close(); err == nil {
		err = cerr
	}
	return err
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (t *tx) CreateAccount(ctx context.Context, id string, now time.Time) error {
	return mapErr(t.exec(ctx, t.q.createAccount, id, pgTime(now)))
}

// LockAccount locks the account's row and keeps the audit chain's head it
// holds, for AppendAuditEvent, and its count of keys not deleted, for
// KeyCapReached.
//
// Unless the unit runs pessimistic, the lock is deferred: it is taken by
// the unit's first event on the account (appendSealed, which seals it
// where it reads the head), or else ahead of the unit's next statement
// that reads, or of COMMIT, whichever comes first. Every write to the
// account waits for its row, so it is held from the unit's last statements
// to COMMIT, not while the key's row and indexes are written (live_keys is
// kept at COMMIT, migration 00011, so the key's insert does not lock the
// row either). A missing account fails the batch that locks it
// (lockAccountQueued, appendSealed divide by its count), with ErrNoAccount;
// an insert of a key before that fails on the foreign key, alike.
func (t *tx) LockAccount(ctx context.Context, id string) error {
	if !t.pessimistic {
		if _, queued := t.locking[id]; queued {
			return nil
		}
		if _, deferred := t.deferred[id]; deferred {
			return nil
		}
		if _, held := t.heads[id]; !held {
			if t.closed {
				return errTxClosed
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if t.deferred == nil {
				t.deferred = map[string]*deferredLock{}
			}
			t.deferred[id] = &deferredLock{}
			return nil
		}
	}
	var h auditHead
	var live int64
	err := t.queryRow(ctx, t.q.lockAccount, id).Scan(&h.seq, &h.hash, &live)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNoAccount
	}
	if err != nil {
		return err
	}
	t.setHead(id, h)
	t.setLive(id, live)
	return nil
}

// setLive keeps live, an account's live_keys read under its lock, for
// KeyCapReached, unless the unit has written keys: live_keys counts them
// only at COMMIT.
func (t *tx) setLive(id string, live int64) {
	if t.keyWrites == 0 {
		t.liveAccount, t.liveKeys = id, live
	}
}

// takeDeferred queues the deferred locks (see LockAccount), in id order,
// behind the pending statements: a batch is about to go.
func (t *tx) takeDeferred() {
	if len(t.deferred) == 0 {
		return
	}
	ids := make([]string, 0, len(t.deferred))
	for id := range t.deferred {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		t.queueLock(id, t.deferred[id].limit)
	}
	t.deferred = nil
}

// queueLock queues the account's lock (see LockAccount), with the cap's
// check when limit is set.
func (t *tx) queueLock(id string, limit any) {
	q := queued{sql: t.q.lockAccountQueued, args: []any{id, limit}}
	q.read = func(br pgx.BatchResults) error {
		var h auditHead
		var live int64
		if err := br.QueryRow().Scan(&h.seq, &h.hash, &live, new(int32), new(any)); err != nil {
			return err
		}
		delete(t.locking, id)
		t.setHead(id, h) // read before the events queued after the lock: they move it on
		t.setLive(id, live)
		return nil
	}
	q.fail = lockFailed
	t.pending = append(t.pending, q)
	if t.locking == nil {
		t.locking = map[string]int{}
	}
	t.locking[id] = len(t.pending) - 1
}

// lockFailed maps the failures of the statements that take an account's
// lock (lockAccountQueued, appendSealed).
func lockFailed(pe *pgconn.PgError) error {
	switch pe.Code {
	case "22012": // division_by_zero: 1/count(*), no such account
		return store.ErrNoAccount
	case "2201E": // invalid_argument_for_logarithm: ln(0), at the cap
		return errCapGuard
	}
	return nil
}

// errCapGuard: the account's count of keys not deleted was at the cap a
// unit's KeyCapReached was answered below (see there); InTx runs the unit
// again, pessimistic.
var errCapGuard = errors.New("postgres: the account is at its key cap; counting under the lock")

func (t *tx) setHead(id string, h auditHead) {
	if t.heads == nil {
		t.heads = map[string]auditHead{}
	}
	t.heads[id] = h
}

func (t *tx) DeleteAccount(ctx context.Context, id string) error {
	delete(t.heads, id)
	delete(t.deferred, id)
	t.liveAccount = ""
	t.keyWrites++
	// Its events too: the account row that records the chain's head goes.
	for _, q := range []string{t.q.deleteAccountEvents, t.q.deleteAccountKeys, t.q.deleteAccount} {
		if err := t.exec(ctx, q, id); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) Key(ctx context.Context, id string) (*apikey.Key, error) {
	return scanKey(t.queryRow(ctx, t.q.getKeyForUpdate, id))
}

// LockKeys implements store.KeysLocker: the reads go in one batch (with the
// pending statements, and BEGIN if the unit has not begun), locking in the
// order given.
func (t *tx) LockKeys(ctx context.Context, ids []string, shared []bool) ([]*apikey.Key, error) {
	if len(ids) != len(shared) {
		return nil, fmt.Errorf("postgres: LockKeys: %d ids, %d shared flags", len(ids), len(shared))
	}
	if t.closed {
		return nil, errTxClosed
	}
	reads := make([]queued, len(ids))
	for i, id := range ids {
		reads[i] = queued{sql: t.q.getKeyForUpdate, args: []any{id}}
		if shared[i] {
			reads[i].sql = t.q.getKeyForShare
		}
	}
	br, err := t.sendBatch(ctx, reads...)
	var pf *pendingFailed
	if errors.As(err, &pf) {
		return nil, pf.err
	}
	if err != nil {
		return nil, err
	}
	out := make([]*apikey.Key, len(ids))
	for i := range ids {
		k, err := scanKey(br.QueryRow())
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			_ = br.Close() // err, the read's, is the one to report
			return nil, err
		}
		out[i] = k
	}
	return out, br.Close()
}

// KeyShared implements store.KeySharer: FOR SHARE, which blocks changes to
// the key (UPDATE, FOR UPDATE) until commit but not other units' FOR SHARE.
func (t *tx) KeyShared(ctx context.Context, id string) (*apikey.Key, error) {
	return scanKey(t.queryRow(ctx, t.q.getKeyForShare, id))
}

// KeyCapReached, while the account's lock is deferred (see LockAccount) and
// before the unit writes a key, answers below the cap at once and has the
// statement that takes the lock check it: that fails with errCapGuard
// unless the account's count of keys not deleted, read under the lock, is
// below limit (then so are its active keys, which the answer is about; the
// count leaves out the unit's own writes, kept at COMMIT, and every other
// unit's are in it once committed: they lock the row to count them). InTx
// then runs the unit again pessimistic, which counts exactly before
// anything is written. So the cap holds as it did (check and insert under
// one lock), and a create below the cap does not wait for the lock before
// it sends its writes.
func (t *tx) KeyCapReached(ctx context.Context, accountID string, now time.Time, limit int) (bool, error) {
	if d, ok := t.deferred[accountID]; ok && t.keyWrites == 0 {
		if t.closed {
			return false, errTxClosed
		}
		if err := ctx.Err(); err != nil {
			return false, err
		}
		if l, set := d.limit.(int64); !set || int64(limit) < l {
			d.limit = int64(limit)
		}
		return false, nil
	}
	if _, ok := t.locking[accountID]; ok { // the lock is queued behind other statements: take it now
		if err := t.flush(ctx); err != nil {
			return false, err
		}
	}
	if _, ok := t.deferred[accountID]; ok { // after the unit's writes: take it now
		if err := t.flush(ctx); err != nil {
			return false, err
		}
	}
	if t.liveAccount == accountID && t.liveKeys < int64(limit) {
		return false, nil // active keys <= keys not deleted < limit
	}
	q := t.q.capReached
	if t.keyWrites > 0 {
		q = t.q.capCounted // live_keys leaves out the unit's writes
	}
	var reached bool
	err := t.queryRow(ctx, q, accountID, pgTime(now), limit).Scan(&reached)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, store.ErrNoAccount
	}
	return reached, err
}

// ReleaseExpiredName is queued: it has no answer, and the insert that
// follows it carries it to the server (one round trip while the account is
// locked, not two).
func (t *tx) ReleaseExpiredName(ctx context.Context, accountID, name string, now time.Time) error {
	return t.queue(ctx, t.q.releaseName, accountID, namekey.Key(name), pgTime(now))
}

// InsertKey and UpdateKey are queued (see queue): a unit that writes a key
// goes on to its audit event and commits, and every use case returns their
// failure (a duplicate name, a missing account) as the unit's error, which
// InTx then returns mapped as their own call would have. So the write, the
// event and COMMIT take one round trip while the key's row is held, and
// the account's row is locked only by the event (see LockAccount).
func (t *tx) InsertKey(ctx context.Context, k *apikey.Key) error {
	t.liveAccount = "" // the triggers change live_keys
	t.keyWrites++
	normalize(k)
	k.NameKey = namekey.Key(k.Name) // the store keeps it in step with the name
	rateLimit, rateWindow := store.EncodeRateLimit(k.RateLimit)
	cr := store.EncodeCredits(k.Credits)
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	return mapErr(t.queue(ctx, t.q.insertKey,
		k.ID, k.AccountID, k.Name, k.Type, k.SecretHash, perms, meta, k.Status, k.Managed, k.Deleted,
		k.LastUsedAt, k.LastUsedIP, k.ExpiresAt, k.CreatedAt, k.UpdatedAt,
		k.CreatedBy.Kind, k.CreatedBy.ID, k.CreatedBy.RequestID, nullIfEmpty(k.KeyHint), k.NameKey,
		store.EncodeNetworks(k.AllowedNetworks), rateLimit, rateWindow,
		cr.Remaining, cr.RefillAmount, cr.RefillInterval, cr.RefillDay, cr.RefilledAt))
}

func (t *tx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	t.liveAccount = "" // the triggers change live_keys
	t.keyWrites++
	normalize(k)
	k.NameKey = namekey.Key(k.Name)
	rateLimit, rateWindow := store.EncodeRateLimit(k.RateLimit)
	cr := store.EncodeCredits(k.Credits)
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	return mapErr(t.queue(ctx, t.q.updateKey,
		k.Name, k.SecretHash, perms, meta, k.Status, k.Deleted, k.ExpiresAt, k.UpdatedAt,
		k.PrevSecretHash, k.PrevSecretExpiresAt, nullIfEmpty(k.KeyHint), k.ID, k.NameKey,
		store.EncodeNetworks(k.AllowedNetworks), rateLimit, rateWindow,
		cr.Remaining, cr.RefillAmount, cr.RefillInterval, cr.RefillDay, cr.RefilledAt))
}

// encodeMaps encodes k's maps now: a queued statement's arguments are
// encoded when it is sent, and the caller may change the maps before then.
// (The other arguments are values, or slices and pointers that the use
// cases replace rather than change.)
func encodeMaps(k *apikey.Key) (perms, meta json.RawMessage, err error) {
	if perms, err = json.Marshal(k.Permissions); err != nil {
		return nil, nil, fmt.Errorf("postgres: key %s permissions: %w", k.ID, err)
	}
	if meta, err = json.Marshal(k.Metadata); err != nil {
		return nil, nil, fmt.Errorf("postgres: key %s metadata: %w", k.ID, err)
	}
	return perms, meta, nil
}

// normalize gives nil maps their empty value (never a JSON null) and
// timestamps their stored precision.
func normalize(k *apikey.Key) {
	if k.Permissions == nil {
		k.Permissions = map[string][]string{}
	}
	if k.Metadata == nil {
		k.Metadata = map[string]string{}
	}
	k.LastUsedAt = pgTimePtr(k.LastUsedAt)
	k.ExpiresAt = pgTimePtr(k.ExpiresAt)
	k.PrevSecretExpiresAt = pgTimePtr(k.PrevSecretExpiresAt)
	if len(k.PrevSecretHash) == 0 {
		k.PrevSecretHash = nil // NULL, which the partial unique index skips; never ''
	}
	k.CreatedAt = pgTime(k.CreatedAt)
	k.UpdatedAt = pgTime(k.UpdatedAt)
}

// GetKey reads the key from the row's raw values (scanRawKeys), or by Scan
// when they are not as it reads them.
func (r *Repo) GetKey(ctx context.Context, id string) (_ *apikey.Key, err error) {
	defer classify(&err)
	rows, err := r.pool.Query(ctx, r.q.getKey, id)
	if err != nil {
		return nil, err
	}
	if !rawKeyColumns(rows.FieldDescriptions()) {
		defer rows.Close()
		if !rows.Next() {
			if err := rows.Err(); err != nil {
				return nil, err
			}
			return nil, store.ErrNotFound
		}
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		rows.Close()
		return k, rows.Err()
	}
	ks, ok, err := scanRawKeys(rows, 1)
	switch {
	case err != nil:
		return nil, err
	case !ok: // a value Scan decides
		return scanKey(r.pool.QueryRow(ctx, r.q.getKey, id))
	case len(ks) == 0:
		return nil, store.ErrNotFound
	}
	return ks[0], nil
}

func (r *Repo) KeyBySecretHash(ctx context.Context, hash []byte) (_ *apikey.Key, err error) {
	defer classify(&err)
	return scanKey(r.pool.QueryRow(ctx, r.q.keyBySecretHash, hash))
}

func (r *Repo) ListManagedKeys(ctx context.Context, accountID string) (_ []*apikey.Key, err error) {
	defer classify(&err)
	rows, err := r.pool.Query(ctx, r.q.listManaged, accountID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
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

func (r *Repo) RecordUsage(ctx context.Context, batch []store.Usage) (err error) {
	defer classify(&err)
	if len(batch) == 0 {
		return nil
	}
	// A batch in strictly increasing id order (auth.UsageTracker's: one use
	// a key, sorted) is written as it is, without the map and sort below.
	if idsIncrease(batch) {
		var b pgx.Batch
		b.QueuedQueries = make([]*pgx.QueuedQuery, 0, len(batch))
		for _, u := range batch {
			b.Queue(r.q.recordUsage, pgTime(u.At), u.IP, u.KeyID)
		}
		return r.pool.SendBatch(ctx, &b).Close()
	}
	// Keep each key's latest use (the first of equal times, as applying the
	// batch in order would) and update keys in id order, so that concurrent
	// batches take row locks in one order and cannot deadlock.
	latest := make(map[string]store.Usage, len(batch))
	for _, u := range batch {
		u.At = pgTime(u.At)
		if prev, ok := latest[u.KeyID]; !ok || prev.At.Before(u.At) {
			latest[u.KeyID] = u
		}
	}
	ids := make([]string, 0, len(latest))
	for id := range latest {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	// A batch without explicit BEGIN runs as one implicit transaction.
	var b pgx.Batch
	for _, id := range ids {
		u := latest[id]
		b.Queue(r.q.recordUsage, u.At, u.IP, u.KeyID)
	}
	return r.pool.SendBatch(ctx, &b).Close()
}

// idsIncrease reports whether batch's key ids strictly increase: sorted,
// each id once.
func idsIncrease(batch []store.Usage) bool {
	for i := 1; i < len(batch); i++ {
		if batch[i-1].KeyID >= batch[i].KeyID {
			return false
		}
	}
	return true
}

// nullIfEmpty stores an absent hint as NULL, as keys from before hints were kept have it.
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// scanKey reads a row of keyColumns. The JSON columns are scanned as their
// text and read by keymaps (pgx's default, json.Unmarshal into the maps, was
// ~15% of a key page's CPU).
func scanKey(row pgx.Row) (*apikey.Key, error) {
	var (
		k             apikey.Key
		hint, nameKey *string
		perms, meta   string
		networks      string
		rateLimit     int64
		rateWindow    int64
		cr            store.CreditColumns
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Type, &k.SecretHash, &perms, &meta, &k.Status,
		&k.Managed, &k.Deleted, &k.LastUsedAt, &k.LastUsedIP, &k.ExpiresAt, &k.CreatedAt, &k.UpdatedAt,
		&k.CreatedBy.Kind, &k.CreatedBy.ID, &k.CreatedBy.RequestID, &hint, &nameKey, &networks, &rateLimit, &rateWindow,
		&cr.Remaining, &cr.RefillAmount, &cr.RefillInterval, &cr.RefillDay, &cr.RefilledAt, &k.PrevSecretHash, &k.PrevSecretExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if k.Permissions, err = keymaps.Permissions(perms); err != nil {
		return nil, fmt.Errorf("postgres: key %s permissions: %w", k.ID, err)
	}
	if k.Metadata, err = keymaps.Metadata(meta); err != nil {
		return nil, fmt.Errorf("postgres: key %s metadata: %w", k.ID, err)
	}
	if k.AllowedNetworks, err = store.DecodeNetworks(networks); err != nil {
		return nil, fmt.Errorf("postgres: key %s allowed_networks: %w", k.ID, err)
	}
	k.RateLimit = store.DecodeRateLimit(rateLimit, rateWindow)
	if k.Credits, err = cr.Decode(); err != nil {
		return nil, fmt.Errorf("postgres: key %s: %w", k.ID, err)
	}
	if hint != nil { // NULL: a key from before hints were kept
		k.KeyHint = *hint
	}
	if nameKey != nil { // NULL: written by a binary from before 00009; the next start fills it
		k.NameKey = *nameKey
	}
	k.CreatedAt = k.CreatedAt.UTC()
	k.UpdatedAt = k.UpdatedAt.UTC()
	for _, p := range []**time.Time{&k.LastUsedAt, &k.ExpiresAt, &k.PrevSecretExpiresAt} {
		if *p != nil {
			t := (*p).UTC()
			*p = &t
		}
	}
	return &k, nil
}

// mapErr turns unique violations into the store's errors by constraint name
// (see migrations/).
func mapErr(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23503" &&
		(pe.ConstraintName == "api_keys_account_fkey" || pe.ConstraintName == "audit_events_account_fkey") {
		return store.ErrNoAccount
	}
	if errors.As(err, &pe) && pe.Code == "23505" {
		switch pe.ConstraintName {
		// name_key's (00009), or the exact name's, which an older binary's
		// rows without a name key still rely on.
		case "api_keys_account_name_key", "api_keys_account_name":
			return store.ErrDuplicateName
		case "api_keys_pkey", "api_keys_secret_hash_key", "api_keys_prev_secret_hash":
			return store.ErrDuplicateKeyID
		case "accounts_pkey":
			return store.ErrAccountExists
		}
	}
	return err
}

// statusExpired is the list filter for ACTIVE keys past their expiry (a
// status computed at read time, never stored).
const statusExpired = "EXPIRED"

// args collects a query's bound parameters and names their placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return "$" + strconv.Itoa(len(*a))
}

// ListKeys pages in (created_at, id) order from the cursor on (keyset
// pagination: keys created or deleted between pages move no other key
// across the page boundary). Ids compare with COLLATE "C", bytewise as in
// SQLite, which the index api_keys_account_created is built with.
func (r *Repo) ListKeys(ctx context.Context, f store.KeyFilter) (_ []*apikey.Key, err error) {
	defer classify(&err)
	if f.Limit <= 0 {
		return nil, fmt.Errorf("postgres: list keys: limit %d, want at least 1", f.Limit)
	}
	a := args{f.AccountID}
	q := r.q.listKeys + ` AND deleted = ` + a.add(f.Deleted)
	switch f.Status {
	case "":
	case apikey.StatusActive:
		q += ` AND status = ` + a.add(apikey.StatusActive) + ` AND (expires_at IS NULL OR expires_at > ` + a.add(pgTime(f.Now)) + `)`
	case statusExpired:
		q += ` AND status = ` + a.add(apikey.StatusActive) + ` AND expires_at <= ` + a.add(pgTime(f.Now))
	case apikey.StatusInactive:
		q += ` AND status = ` + a.add(apikey.StatusInactive)
	default:
		return nil, fmt.Errorf("postgres: list keys: unknown status %q", f.Status)
	}
	if f.Type != "" {
		q += ` AND type = ` + a.add(f.Type)
	}
	if f.Managed != nil {
		q += ` AND managed = ` + a.add(*f.Managed)
	}
	if f.CreatedBy != "" {
		q += ` AND created_by_id = ` + a.add(f.CreatedBy)
	}
	if f.After != nil {
		q += ` AND (created_at, id COLLATE "C") > (` + a.add(pgTime(f.After.CreatedAt)) + `, ` + a.add(f.After.ID) + `)`
	}
	q += ` ORDER BY created_at, id COLLATE "C" LIMIT ` + a.add(f.Limit)
	rows, err := r.pool.Query(ctx, q, a...)
	if err != nil {
		return nil, err
	}
	if rawKeyColumns(rows.FieldDescriptions()) {
		if out, ok, err := scanRawKeys(rows, min(f.Limit, 101)); ok || err != nil {
			return out, err
		}
		// A key is to be read by Scan: the page is.
		if rows, err = r.pool.Query(ctx, q, a...); err != nil {
			return nil, err
		}
	}
	defer rows.Close()
	out := []*apikey.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}
