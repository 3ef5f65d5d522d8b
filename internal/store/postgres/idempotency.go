package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// idemQueries are the idempotency records' statements for one mode's schema.
type idemQueries struct {
	get, lock, insert, replace, complete, release, renew, expire string
}

const idemColumns = `account_id, idem_key, id, fingerprint, state, status, body, created_at, lease_until, expires_at, holder`

var idemByMode = func() map[apikey.Mode]idemQueries {
	out := map[apikey.Mode]idemQueries{}
	for m, schema := range Schemas {
		t := pgx.Identifier{schema, "idempotency_records"}.Sanitize()
		out[m] = idemQueries{
			get:  `SELECT ` + idemColumns + ` FROM ` + t + ` WHERE account_id = $1 AND idem_key = $2`,
			lock: `SELECT ` + idemColumns + ` FROM ` + t + ` WHERE account_id = $1 AND idem_key = $2 FOR UPDATE`,
			insert: `INSERT INTO ` + t + ` (` + idemColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
				ON CONFLICT (account_id, idem_key) DO NOTHING`,
			replace: `UPDATE ` + t + ` SET id = $3, fingerprint = $4, state = $5, status = $6, body = $7,
				created_at = $8, lease_until = $9, expires_at = $10, holder = $11 WHERE account_id = $1 AND idem_key = $2`,
			complete: `UPDATE ` + t + ` SET state = 'done', status = $4, body = $5
				WHERE account_id = $1 AND idem_key = $2 AND id = $3 AND state = 'in_progress'`,
			release: `DELETE FROM ` + t + ` WHERE account_id = $1 AND idem_key = $2 AND id = $3 AND state = 'in_progress'`,
			renew: `UPDATE ` + t + ` SET lease_until = $4
				WHERE account_id = $1 AND idem_key = $2 AND id = $3 AND state = 'in_progress'`,
			// SKIP LOCKED: two claims sweeping at once never wait on (or
			// deadlock over) each other's rows; what one skips the next sweeps.
			expire: `DELETE FROM ` + t + ` WHERE (account_id, idem_key) IN (SELECT account_id, idem_key FROM ` + t + `
				WHERE expires_at <= $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
		}
	}
	return out
}()

func scanIdem(row pgx.Row) (*store.IdempotencyRecord, error) {
	var r store.IdempotencyRecord
	err := row.Scan(&r.AccountID, &r.Key, &r.ID, &r.Fingerprint, &r.State, &r.Status, &r.Body, &r.CreatedAt, &r.LeaseUntil, &r.ExpiresAt, &r.Holder)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	r.CreatedAt, r.LeaseUntil, r.ExpiresAt = r.CreatedAt.UTC(), r.LeaseUntil.UTC(), r.ExpiresAt.UTC()
	return &r, nil
}

func idemArgs(r *store.IdempotencyRecord) []any {
	return []any{r.AccountID, r.Key, r.ID, r.Fingerprint, r.State, r.Status, r.Body,
		pgTime(r.CreatedAt), pgTime(r.LeaseUntil), pgTime(r.ExpiresAt), r.Holder}
}

// GetIdempotency implements store.Repository.
func (r *Repo) GetIdempotency(ctx context.Context, accountID, key string) (*store.IdempotencyRecord, error) {
	return scanIdem(r.pool.QueryRow(ctx, idemByMode[r.mode].get, accountID, key))
}

func (t *tx) InsertIdempotency(ctx context.Context, r *store.IdempotencyRecord) (bool, error) {
	r.Holder = t.instance
	tag, err := t.execTag(ctx, idemByMode[t.mode].insert, idemArgs(r)...)
	return tag.RowsAffected() == 1, err
}

func (t *tx) LockIdempotency(ctx context.Context, accountID, key string) (*store.IdempotencyRecord, error) {
	return scanIdem(t.queryRow(ctx, idemByMode[t.mode].lock, accountID, key))
}

func (t *tx) ReplaceIdempotency(ctx context.Context, r *store.IdempotencyRecord) error {
	r.Holder = t.instance
	tag, err := t.execTag(ctx, idemByMode[t.mode].replace, idemArgs(r)...)
	if err == nil && tag.RowsAffected() == 0 {
		return store.ErrNotFound
	}
	return err
}

func (t *tx) CompleteIdempotency(ctx context.Context, accountID, key, id string, status int, body []byte) error {
	tag, err := t.execTag(ctx, idemByMode[t.mode].complete, accountID, key, id, status, body)
	if err == nil && tag.RowsAffected() == 0 {
		return store.ErrIdempotencyLost
	}
	return err
}

func (t *tx) ReleaseIdempotency(ctx context.Context, accountID, key, id string) error {
	_, err := t.execTag(ctx, idemByMode[t.mode].release, accountID, key, id)
	return err
}

func (t *tx) RenewIdempotency(ctx context.Context, accountID, key, id string, until time.Time) error {
	tag, err := t.execTag(ctx, idemByMode[t.mode].renew, accountID, key, id, pgTime(until))
	if err == nil && tag.RowsAffected() == 0 {
		return store.ErrIdempotencyLost
	}
	return err
}

// IdempotencyHolderGone implements store.Tx: never known here. Replicas
// share the database and nothing in it outlives a process (a session
// advisory lock would, but pins a connection per replica and dies with a
// network blip, not only with its holder); a lease its holder stopped
// renewing says it is gone.
func (t *tx) IdempotencyHolderGone(context.Context, string) (bool, error) { return false, nil }

func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

func (t *tx) DeleteExpiredIdempotency(ctx context.Context, now time.Time, limit int) (int, error) {
	tag, err := t.execTag(ctx, idemByMode[t.mode].expire, pgTime(now), limit)
	return int(tag.RowsAffected()), err
}
