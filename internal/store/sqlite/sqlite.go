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
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the SQLite files.
type Options struct {
	// Synchronous is SQLite's synchronous pragma: NORMAL (default) survives a
	// process crash in WAL mode; FULL also survives power loss.
	Synchronous string
}

// Store keeps live keys in DIR/live.db and sandbox keys in DIR/sandbox.db.
type Store struct {
	repos map[apikey.Mode]*Repo
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
	return s, nil
}

func openRepo(ctx context.Context, mode apikey.Mode, path string, opt Options) (*Repo, error) {
	// _txlock=immediate takes the write lock at BEGIN, so read-modify-write
	// transactions serialize instead of failing with SQLITE_BUSY on upgrade.
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)" +
		"&_pragma=synchronous(" + strings.ToUpper(opt.Synchronous) + ")"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	sub, err := fs.Sub(migrations, "migrations")
	var prov *goose.Provider
	if err == nil {
		prov, err = goose.NewProvider(goose.DialectSQLite3, db, sub)
	}
	if err == nil {
		_, err = prov.Up(ctx)
	}
	if err != nil {
		_ = db.Close() // err is the one to report
		return nil, fmt.Errorf("sqlite: migrate %s: %w", path, err)
	}
	if err := os.Chmod(path, 0o600); err != nil {
		_ = db.Close()
		return nil, err
	}
	r := &Repo{db: db, mode: mode}
	if err := r.prepare(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("sqlite: prepare %s: %w", path, err)
	}
	return r, nil
}

func (s *Store) Repo(m apikey.Mode) store.Repository { return s.repos[m] }

// DB exposes a mode's handle for tests and tooling.
func (s *Store) DB(m apikey.Mode) *sql.DB { return s.repos[m].db }

func (s *Store) Ping(ctx context.Context) error {
	for _, r := range s.repos {
		if err := r.db.PingContext(ctx); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) Close() error {
	var errs []error
	for _, r := range s.repos {
		errs = append(errs, r.db.Close())
	}
	return errors.Join(errs...)
}

// Repo is one mode's database.
type Repo struct {
	db   *sql.DB
	mode apikey.Mode // what the events appended here belong to
	// The hot statements, compiled once per connection instead of per call
	// (statement compilation was ~11% of the server's CPU under load). Every
	// change to a key appends an audit event, so those statements too.
	insertKey, getKey, byHash, updateKey *sql.Stmt
	auditHead, insertEvent, setAuditHead *sql.Stmt
}

var _ store.Repository = (*Repo)(nil)

func (r *Repo) prepare(ctx context.Context) error {
	for _, p := range []struct {
		dst **sql.Stmt
		sql string
	}{
		{&r.insertKey, `INSERT INTO api_keys
		(id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
		 last_used_at, last_used_ip, expires_at, created_at, updated_at,
		 created_by_kind, created_by_id, created_by_request, key_hint)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&r.getKey, `SELECT ` + keyColumns + ` FROM api_keys WHERE id = ?`},
		// One lookup for the current or the previous secret (both indexed);
		// the current one wins, as in the PostgreSQL store.
		{&r.byHash, `SELECT ` + keyColumns + ` FROM api_keys WHERE secret_hash = ?1 OR prev_secret_hash = ?1
		ORDER BY secret_hash = ?1 DESC LIMIT 1`},
		// A key that takes a new name holds it again (name_released = 0), so
		// the unique index applies to it even if it had released its old one.
		{&r.updateKey, `UPDATE api_keys SET name = ?1, secret_hash = ?2, permissions = ?3, metadata = ?4,
		status = ?5, deleted = ?6, expires_at = ?7, updated_at = ?8, prev_secret_hash = ?9, prev_secret_expires_at = ?10,
		key_hint = ?11, name_released = CASE WHEN name = ?1 THEN name_released ELSE 0 END WHERE id = ?12`},
		{&r.auditHead, `SELECT audit_seq, audit_head FROM accounts WHERE id = ?`},
		{&r.insertEvent, `INSERT INTO audit_events (` + eventColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&r.setAuditHead, `UPDATE accounts SET audit_seq = ?, audit_head = ? WHERE id = ?`},
	} {
		st, err := r.db.PrepareContext(ctx, p.sql) //nolint:sqlclosecheck // kept for the Repo's life; Store.Close closes the DB and with it its statements
		if err != nil {
			return err
		}
		*p.dst = st
	}
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

func parseTime(s string) (time.Time, error) { return time.Parse(timeFormat, s) }

func (r *Repo) AccountExists(ctx context.Context, id string) (bool, error) {
	var n int
	err := r.db.QueryRowContext(ctx, `SELECT count(*) FROM accounts WHERE id = ?`, id).Scan(&n)
	return n > 0, err
}

// InTx runs fn in one IMMEDIATE transaction (see _txlock in openRepo): it
// holds the database's write lock from BEGIN, so what fn reads cannot change
// before it commits.
func (r *Repo) InTx(ctx context.Context, fn func(store.Tx) error) error {
	sqlTx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	// A no-op after Commit; after a failure, fn's error is the one to report.
	defer func() { _ = sqlTx.Rollback() }()
	if err := fn(&tx{r: r, tx: sqlTx}); err != nil {
		return err
	}
	return sqlTx.Commit()
}

// tx is one unit of work on a Repo.
type tx struct {
	r  *Repo
	tx *sql.Tx
}

var _ store.Tx = (*tx)(nil)

func (t *tx) CreateAccount(ctx context.Context, id string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, id, fmtTime(now))
	if isUnique(err) {
		return store.ErrAccountExists
	}
	return err
}

func (t *tx) LockAccount(ctx context.Context, id string) error {
	var one int
	err := t.tx.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE id = ?`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNoAccount
	}
	return err
}

func (t *tx) DeleteAccount(ctx context.Context, id string) error {
	// Its events too: the account row that records the chain's head goes.
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM audit_events WHERE account_id = ?`, id); err != nil {
		return err
	}
	if _, err := t.tx.ExecContext(ctx, `DELETE FROM api_keys WHERE account_id = ?`, id); err != nil {
		return err
	}
	_, err := t.tx.ExecContext(ctx, `DELETE FROM accounts WHERE id = ?`, id)
	return err
}

func (t *tx) Key(ctx context.Context, id string) (*apikey.Key, error) {
	return scanKey(t.tx.StmtContext(ctx, t.r.getKey).QueryRowContext(ctx, id)) //nolint:sqlclosecheck // bound to the transaction, whose Commit or Rollback closes it
}

func (t *tx) CountActiveKeys(ctx context.Context, accountID string, now time.Time, atMost int) (int, error) {
	var n int
	// An index-only walk of api_keys_active (migration 00005), at most atMost entries.
	err := t.tx.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT 1 FROM api_keys
		WHERE account_id = ? AND deleted = 0 AND (expires_at IS NULL OR expires_at > ?) LIMIT ?)`,
		accountID, fmtTime(now), atMost).Scan(&n)
	return n, err
}

func (t *tx) ReleaseExpiredName(ctx context.Context, accountID, name string, now time.Time) error {
	_, err := t.tx.ExecContext(ctx, `UPDATE api_keys SET name_released = 1
		WHERE account_id = ? AND name = ? AND deleted = 0 AND name_released = 0
		AND expires_at IS NOT NULL AND expires_at <= ?`, accountID, name, fmtTime(now))
	return err
}

func (t *tx) InsertKey(ctx context.Context, k *apikey.Key) error {
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	_, err = t.tx.StmtContext(ctx, t.r.insertKey).ExecContext(ctx, //nolint:sqlclosecheck // bound to the transaction, whose Commit or Rollback closes it
		k.ID, k.AccountID, k.Name, k.Type, k.SecretHash, perms, meta, k.Status, k.Managed, k.Deleted,
		fmtTimePtr(k.LastUsedAt), k.LastUsedIP, fmtTimePtr(k.ExpiresAt), fmtTime(k.CreatedAt), fmtTime(k.UpdatedAt),
		k.CreatedBy.Kind, k.CreatedBy.ID, k.CreatedBy.RequestID, nullIfEmpty(k.KeyHint))
	return mapInsertErr(err)
}

func (t *tx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	perms, meta, err := encodeMaps(k)
	if err != nil {
		return err
	}
	_, err = t.tx.StmtContext(ctx, t.r.updateKey).ExecContext(ctx, //nolint:sqlclosecheck // bound to the transaction, whose Commit or Rollback closes it
		k.Name, k.SecretHash, perms, meta, k.Status, k.Deleted, fmtTimePtr(k.ExpiresAt), fmtTime(k.UpdatedAt),
		nilIfEmpty(k.PrevSecretHash), fmtTimePtr(k.PrevSecretExpiresAt), nullIfEmpty(k.KeyHint), k.ID)
	return mapInsertErr(err)
}

func mapInsertErr(err error) error {
	var se *sqlite3.Error
	if errors.As(err, &se) && se.Code() == sqlite3lib.SQLITE_CONSTRAINT_FOREIGNKEY {
		return store.ErrNoAccount // the foreign keys are account_id's (api_keys, audit_events)
	}
	if isUnique(err) {
		if strings.Contains(err.Error(), "api_keys.name") {
			return store.ErrDuplicateName
		}
		return store.ErrDuplicateKeyID
	}
	return err
}

const keyColumns = `id, account_id, name, type, secret_hash, permissions, metadata, status, managed, deleted,
	last_used_at, last_used_ip, expires_at, created_at, updated_at, prev_secret_hash, prev_secret_expires_at,
	created_by_kind, created_by_id, created_by_request, key_hint`

func (r *Repo) GetKey(ctx context.Context, id string) (*apikey.Key, error) {
	return scanKey(r.getKey.QueryRowContext(ctx, id))
}

func (r *Repo) KeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, error) {
	return scanKey(r.byHash.QueryRowContext(ctx, hash))
}

func (r *Repo) ListManagedKeys(ctx context.Context, accountID string) ([]*apikey.Key, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT `+keyColumns+` FROM api_keys
		WHERE account_id = ? AND managed = 1 AND deleted = 0 ORDER BY type DESC, id`, accountID)
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

func (r *Repo) RecordUsage(ctx context.Context, batch []store.Usage) error {
	if len(batch) == 0 {
		return nil
	}
	tx, err := r.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }() // a no-op after Commit
	stmt, err := tx.PrepareContext(ctx, `UPDATE api_keys SET last_used_at = ?, last_used_ip = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`)
	if err != nil {
		return err
	}
	defer func() { _ = stmt.Close() }() // the transaction's end closes it anyway
	for _, u := range batch {
		at := fmtTime(u.At)
		if _, err := stmt.ExecContext(ctx, at, u.IP, u.KeyID, at); err != nil {
			return err
		}
	}
	return tx.Commit()
}

// statusExpired is the list filter for ACTIVE keys past their expiry (a
// status computed at read time, never stored).
const statusExpired = "EXPIRED"

// ListKeys pages in (created_at, id) order from the cursor on (keyset
// pagination: keys created or deleted between pages move no other key
// across the page boundary). created_at compares as fixed-width text and ids
// bytewise (BINARY), as PostgreSQL's COLLATE "C" does.
func (r *Repo) ListKeys(ctx context.Context, f store.KeyFilter) ([]*apikey.Key, error) {
	if f.Limit <= 0 {
		return nil, fmt.Errorf("sqlite: list keys: limit %d, want at least 1", f.Limit)
	}
	q := `SELECT ` + keyColumns + ` FROM api_keys WHERE account_id = ? AND deleted = ?`
	args := []any{f.AccountID, f.Deleted}
	switch now := fmtTime(f.Now); f.Status {
	case "":
	case apikey.StatusActive:
		q += ` AND status = ? AND (expires_at IS NULL OR expires_at > ?)`
		args = append(args, apikey.StatusActive, now)
	case statusExpired:
		q += ` AND status = ? AND expires_at <= ?`
		args = append(args, apikey.StatusActive, now)
	case apikey.StatusInactive:
		q += ` AND status = ?`
		args = append(args, apikey.StatusInactive)
	default:
		return nil, fmt.Errorf("sqlite: list keys: unknown status %q", f.Status)
	}
	if f.Type != "" {
		q += ` AND type = ?`
		args = append(args, f.Type)
	}
	if f.Managed != nil {
		q += ` AND managed = ?`
		args = append(args, *f.Managed)
	}
	if f.CreatedBy != "" {
		q += ` AND created_by_id = ?`
		args = append(args, f.CreatedBy)
	}
	if f.After != nil {
		q += ` AND (created_at, id) > (?, ?)`
		args = append(args, fmtTime(f.After.CreatedAt), f.After.ID)
	}
	q += ` ORDER BY created_at, id LIMIT ?`
	args = append(args, f.Limit)
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
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

type scanner interface{ Scan(...any) error }

func scanKey(row scanner) (*apikey.Key, error) {
	var (
		k                     apikey.Key
		perms, meta           string
		lastUsedAt, expiresAt sql.NullString
		prevExpiresAt         sql.NullString
		lastUsedIP, keyHint   sql.NullString
		createdAt, updatedAt  string
	)
	err := row.Scan(&k.ID, &k.AccountID, &k.Name, &k.Type, &k.SecretHash, &perms, &meta, &k.Status,
		&k.Managed, &k.Deleted, &lastUsedAt, &lastUsedIP, &expiresAt, &createdAt, &updatedAt,
		&k.PrevSecretHash, &prevExpiresAt, &k.CreatedBy.Kind, &k.CreatedBy.ID, &k.CreatedBy.RequestID, &keyHint)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(perms), &k.Permissions); err != nil {
		return nil, fmt.Errorf("sqlite: key %s permissions: %w", k.ID, err)
	}
	if err := json.Unmarshal([]byte(meta), &k.Metadata); err != nil {
		return nil, fmt.Errorf("sqlite: key %s metadata: %w", k.ID, err)
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
