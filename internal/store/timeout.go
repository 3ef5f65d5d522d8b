package store

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// DefaultTimeout bounds each store call unless configured otherwise
// (HSRCPAY_STORE_TIMEOUT).
const DefaultTimeout = 5 * time.Second

// errTimedOut is the cause of a WithTimeout deadline: it tells the store's
// own deadline from one the caller set (or a client that went away).
var errTimedOut = errors.New("store: call exceeded the store timeout")

// WithTimeout bounds every call on s (each read, each unit of work with
// every statement and its commit, Ping) by d on top of the caller's context,
// so a frozen store (a network that drops packets, a server that stopped
// answering) costs a request d, not forever. A call that fails because d
// passed is marked ErrUnavailable, whatever the driver made of the deadline.
// d <= 0 returns s unchanged.
func WithTimeout(s Store, d time.Duration) Store {
	if d <= 0 {
		return s
	}
	t := &timeoutStore{Store: s, d: d, repos: map[apikey.Mode]Repository{}}
	for _, m := range apikey.Modes {
		t.repos[m] = &timeoutRepo{inner: s.Repo(m), d: d}
	}
	return t
}

type timeoutStore struct {
	Store
	d     time.Duration
	repos map[apikey.Mode]Repository
}

func (s *timeoutStore) Repo(m apikey.Mode) Repository { return s.repos[m] }

func (s *timeoutStore) Ping(ctx context.Context) error {
	ctx, cancel := bound(ctx, s.d)
	defer cancel()
	return timedOut(ctx, s.d, s.Store.Ping(ctx))
}

func (s *timeoutStore) PingWrite(ctx context.Context) error {
	ctx, cancel := bound(ctx, s.d)
	defer cancel()
	return timedOut(ctx, s.d, PingWrite(ctx, s.Store))
}

func bound(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeoutCause(ctx, d, errTimedOut)
}

// timedOut marks err as ErrUnavailable when ctx's own deadline (not the
// caller's) ended the call.
func timedOut(ctx context.Context, d time.Duration, err error) error {
	if err != nil && errors.Is(context.Cause(ctx), errTimedOut) {
		return Unavailable(fmt.Errorf("store call exceeded %v: %w", d, err))
	}
	return err
}

type timeoutRepo struct {
	inner Repository
	d     time.Duration
}

func (r *timeoutRepo) AccountExists(ctx context.Context, id string) (bool, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	ok, err := r.inner.AccountExists(ctx, id)
	return ok, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) GetKey(ctx context.Context, id string) (*apikey.Key, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	k, err := r.inner.GetKey(ctx, id)
	return k, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) KeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	k, err := r.inner.KeyBySecretHash(ctx, hash)
	return k, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) ListManagedKeys(ctx context.Context, accountID string) ([]*apikey.Key, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	ks, err := r.inner.ListManagedKeys(ctx, accountID)
	return ks, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) RecordUsage(ctx context.Context, batch []Usage) error {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	return timedOut(ctx, r.d, r.inner.RecordUsage(ctx, batch))
}

func (r *timeoutRepo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (int64, bool, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	rem, ok, err := r.inner.SpendCredits(ctx, id, cost, now)
	return rem, ok, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) ListKeys(ctx context.Context, f KeyFilter) ([]*apikey.Key, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	ks, err := r.inner.ListKeys(ctx, f)
	return ks, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) ListAuditEvents(ctx context.Context, f AuditFilter) ([]audit.Event, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	es, err := r.inner.ListAuditEvents(ctx, f)
	return es, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) AuditAccounts(ctx context.Context) ([]AuditHead, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	hs, err := r.inner.AuditAccounts(ctx)
	return hs, timedOut(ctx, r.d, err)
}

func (r *timeoutRepo) AuditChain(ctx context.Context, accountID string) ([]audit.Event, error) {
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	es, err := r.inner.AuditChain(ctx, accountID)
	return es, timedOut(ctx, r.d, err)
}

// InTx gives the whole unit one deadline: waiting for a connection (or the
// SQLite writer), every statement fn runs, and the commit.
func (r *timeoutRepo) InTx(ctx context.Context, fn func(Tx) error) error {
	bctx, cancel := bound(ctx, r.d)
	defer cancel()
	err := r.inner.InTx(bctx, func(tx Tx) error { return fn(&timeoutTx{inner: tx, outer: ctx, ctx: bctx}) })
	return timedOut(bctx, r.d, err)
}

// timeoutTx runs fn's statements under its unit's deadline: fn passes the
// context it has (the request's), not the bounded one InTx got.
type timeoutTx struct {
	inner      Tx
	outer, ctx context.Context
}

// in is the context for one statement: the unit's bounded context when fn
// passes the context InTx was called with (the usual case: no allocation),
// otherwise fn's context under the unit's deadline.
func (t *timeoutTx) in(ctx context.Context) (context.Context, context.CancelFunc) {
	if sameContext(ctx, t.outer) {
		return t.ctx, noCancel
	}
	dl, _ := t.ctx.Deadline()
	return context.WithDeadlineCause(ctx, dl, errTimedOut)
}

func noCancel() {}

// sameContext is a == b without the panic == raises for two contexts of one
// type that is not comparable (every standard context is a pointer or an
// empty struct; a custom one need not be).
func sameContext(a, b context.Context) bool {
	ta := reflect.TypeOf(a)
	return ta == reflect.TypeOf(b) && ta != nil && ta.Comparable() && a == b
}

func (t *timeoutTx) CreateAccount(ctx context.Context, id string, now time.Time) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.CreateAccount(ctx, id, now)
}

func (t *timeoutTx) LockAccount(ctx context.Context, id string) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.LockAccount(ctx, id)
}

func (t *timeoutTx) DeleteAccount(ctx context.Context, id string) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.DeleteAccount(ctx, id)
}

func (t *timeoutTx) Key(ctx context.Context, id string) (*apikey.Key, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.Key(ctx, id)
}

func (t *timeoutTx) KeyCapReached(ctx context.Context, accountID string, now time.Time, limit int) (bool, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.KeyCapReached(ctx, accountID, now, limit)
}

func (t *timeoutTx) ReleaseExpiredName(ctx context.Context, accountID, name string, now time.Time) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.ReleaseExpiredName(ctx, accountID, name, now)
}

func (t *timeoutTx) InsertKey(ctx context.Context, k *apikey.Key) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.InsertKey(ctx, k)
}

func (t *timeoutTx) UpdateKey(ctx context.Context, k *apikey.Key) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.UpdateKey(ctx, k)
}

func (t *timeoutTx) AppendAuditEvent(ctx context.Context, e *audit.Event) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.AppendAuditEvent(ctx, e)
}

func (t *timeoutTx) InsertIdempotency(ctx context.Context, r *IdempotencyRecord) (bool, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.InsertIdempotency(ctx, r)
}

func (t *timeoutTx) LockIdempotency(ctx context.Context, accountID, key string) (*IdempotencyRecord, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.LockIdempotency(ctx, accountID, key)
}

func (t *timeoutTx) ReplaceIdempotency(ctx context.Context, r *IdempotencyRecord) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.ReplaceIdempotency(ctx, r)
}

func (t *timeoutTx) CompleteIdempotency(ctx context.Context, accountID, key, id string, status int, body []byte) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.CompleteIdempotency(ctx, accountID, key, id, status, body)
}

func (t *timeoutTx) ReleaseIdempotency(ctx context.Context, accountID, key, id string) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.ReleaseIdempotency(ctx, accountID, key, id)
}

func (t *timeoutTx) RenewIdempotency(ctx context.Context, accountID, key, id string, until time.Time) error {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.RenewIdempotency(ctx, accountID, key, id, until)
}

func (t *timeoutTx) IdempotencyHolderGone(ctx context.Context, holder string) (bool, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.IdempotencyHolderGone(ctx, holder)
}

func (t *timeoutTx) DeleteExpiredIdempotency(ctx context.Context, now time.Time, limit int) (int, error) {
	ctx, cancel := t.in(ctx)
	defer cancel()
	return t.inner.DeleteExpiredIdempotency(ctx, now, limit)
}

// GetIdempotency forwards store.IdempotencyReader when the wrapped
// repository has it (both stores do), under the same deadline.
func (r *timeoutRepo) GetIdempotency(ctx context.Context, accountID, key string) (*IdempotencyRecord, error) {
	ir, ok := r.inner.(IdempotencyReader)
	if !ok {
		return nil, fmt.Errorf("store: %T does not read idempotency records", r.inner)
	}
	ctx, cancel := bound(ctx, r.d)
	defer cancel()
	rec, err := ir.GetIdempotency(ctx, accountID, key)
	return rec, timedOut(ctx, r.d, err)
}
