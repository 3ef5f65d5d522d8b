package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/hsrcpay/apikeys/internal/store"
)

// stmtSQL is a statement the writer compiles once, and where it keeps it.
type stmtSQL struct {
	dst **sql.Stmt
	sql string
}

// idemStmts are the idempotency records' statements (migration 00007).
type idemStmts struct {
	lock, insert, replace, complete, release, renew, expire *sql.Stmt
}

const (
	idemColumns = `account_id, idem_key, id, fingerprint, state, status, body, created_at, lease_until, expires_at, holder`
	idemGetSQL  = `SELECT ` + idemColumns + ` FROM idempotency_records WHERE account_id = ? AND idem_key = ?`
)

func (w *writer) idemStatements() []stmtSQL {
	return []stmtSQL{
		// The writer holds the database's write lock: a read is a lock.
		{&w.st.idem.lock, idemGetSQL},
		{&w.st.idem.insert, `INSERT INTO idempotency_records (` + idemColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (account_id, idem_key) DO NOTHING`},
		{&w.st.idem.replace, `UPDATE idempotency_records SET id = ?3, fingerprint = ?4, state = ?5, status = ?6, body = ?7,
		created_at = ?8, lease_until = ?9, expires_at = ?10, holder = ?11 WHERE account_id = ?1 AND idem_key = ?2`},
		{&w.st.idem.complete, `UPDATE idempotency_records SET state = 'done', status = ?4, body = ?5
		WHERE account_id = ?1 AND idem_key = ?2 AND id = ?3 AND state = 'in_progress'`},
		{&w.st.idem.release, `DELETE FROM idempotency_records
		WHERE account_id = ? AND idem_key = ? AND id = ? AND state = 'in_progress'`},
		{&w.st.idem.renew, `UPDATE idempotency_records SET lease_until = ?4
		WHERE account_id = ?1 AND idem_key = ?2 AND id = ?3 AND state = 'in_progress'`},
		{&w.st.idem.expire, `DELETE FROM idempotency_records WHERE rowid IN
		(SELECT rowid FROM idempotency_records WHERE expires_at <= ? LIMIT ?)`},
	}
}

// holder is the id the claims written here carry ("" for a writer outside
// a Store, as some tests make).
func (w *writer) holder() string {
	if w.inst == nil {
		return ""
	}
	return w.inst.id
}

func scanIdem(row scanner) (*store.IdempotencyRecord, error) {
	var (
		r                       store.IdempotencyRecord
		created, lease, expires string
	)
	err := row.Scan(&r.AccountID, &r.Key, &r.ID, &r.Fingerprint, &r.State, &r.Status, &r.Body, &created, &lease, &expires, &r.Holder)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	for _, p := range []struct {
		dst *time.Time
		src string
	}{{&r.CreatedAt, created}, {&r.LeaseUntil, lease}, {&r.ExpiresAt, expires}} {
		if *p.dst, err = parseTime(p.src); err != nil {
			return nil, err
		}
	}
	return &r, nil
}

func idemArgs(r *store.IdempotencyRecord) []any {
	return []any{r.AccountID, r.Key, r.ID, r.Fingerprint, r.State, r.Status, r.Body,
		fmtTime(r.CreatedAt), fmtTime(r.LeaseUntil), fmtTime(r.ExpiresAt), r.Holder}
}

// GetIdempotency implements store.Repository.
func (r *Repo) GetIdempotency(ctx context.Context, accountID, key string) (*store.IdempotencyRecord, error) {
	return scanIdem(r.rdb.QueryRowContext(ctx, idemGetSQL, accountID, key))
}

func (t *tx) InsertIdempotency(ctx context.Context, r *store.IdempotencyRecord) (bool, error) {
	r.Holder = t.w.holder()
	n, err := t.execN(ctx, t.w.st.idem.insert, idemArgs(r)...)
	return n == 1, err
}

func (t *tx) LockIdempotency(ctx context.Context, accountID, key string) (*store.IdempotencyRecord, error) {
	return scanIdem(t.row(ctx, t.w.st.idem.lock, accountID, key))
}

func (t *tx) ReplaceIdempotency(ctx context.Context, r *store.IdempotencyRecord) error {
	r.Holder = t.w.holder()
	n, err := t.execN(ctx, t.w.st.idem.replace, idemArgs(r)...)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

func (t *tx) CompleteIdempotency(ctx context.Context, accountID, key, id string, status int, body []byte) error {
	n, err := t.execN(ctx, t.w.st.idem.complete, accountID, key, id, status, body)
	if err == nil && n == 0 {
		return store.ErrIdempotencyLost
	}
	return err
}

func (t *tx) ReleaseIdempotency(ctx context.Context, accountID, key, id string) error {
	_, err := t.execN(ctx, t.w.st.idem.release, accountID, key, id)
	return err
}

func (t *tx) RenewIdempotency(ctx context.Context, accountID, key, id string, until time.Time) error {
	n, err := t.execN(ctx, t.w.st.idem.renew, accountID, key, id, fmtTime(until))
	if err == nil && n == 0 {
		return store.ErrIdempotencyLost
	}
	return err
}

// IdempotencyHolderGone implements store.Tx: an instance of this directory
// whose lock file nobody holds has ended (instance.go).
func (t *tx) IdempotencyHolderGone(ctx context.Context, holder string) (bool, error) {
	if err := t.usable(ctx); err != nil {
		return false, err
	}
	if t.w.inst == nil {
		return false, nil
	}
	return t.w.inst.holderGone(holder)
}

func (t *tx) DeleteExpiredIdempotency(ctx context.Context, now time.Time, limit int) (int, error) {
	n, err := t.execN(ctx, t.w.st.idem.expire, fmtTime(now), limit)
	return int(n), err
}
