// Package store defines how API keys are kept: one Repository per mode (live,
// sandbox) so the two never mix, and a unit of work (InTx) for every write.
// Implementations live in subpackages; the domain types are in internal/apikey.
package store

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// Usage is one observed use of a key, flushed in batches.
type Usage struct {
	KeyID string
	At    time.Time
	IP    string
}

var (
	ErrNotFound       = errors.New("store: not found")
	ErrDuplicateName  = errors.New("store: an active key with this name exists")
	ErrAccountExists  = errors.New("store: account exists")
	ErrNoAccount      = errors.New("store: no such account")
	ErrDuplicateKeyID = errors.New("store: key id or secret collision")
	// ErrNoCredits: SpendCredits named a key without credits.
	ErrNoCredits = errors.New("store: the key has no credits")
	// ErrIdempotencyLost: the idempotency record is no longer the claim
	// being completed (its lease ran out and another request re-claimed it,
	// or it expired): the unit must roll back, so that only one execution
	// of the request commits.
	ErrIdempotencyLost = errors.New("store: idempotency claim lost")
)

// Store opens the repositories of both modes.
type Store interface {
	Repo(apikey.Mode) Repository
	// Ping checks that every repository is reachable.
	Ping(context.Context) error
	Close() error
}

// WritePinger is a Store that can check that every repository accepts a
// write: a tiny committed write that touches no key (readiness probes it at
// most every few seconds). Both stores are; see each for what it writes.
type WritePinger interface {
	PingWrite(context.Context) error
}

// PingWrite probes s with its PingWrite; a store that has none passes.
func PingWrite(ctx context.Context, s Store) error {
	if w, ok := s.(WritePinger); ok {
		return w.PingWrite(ctx)
	}
	return nil
}

// Repository holds one mode's accounts and keys. Reads run on their own;
// every write runs in a unit of work (InTx), so that a change, the checks it
// depends on (the caller's own key, re-read) and what it records commit or
// fail together.
type Repository interface {
	AccountExists(ctx context.Context, id string) (bool, error)
	GetKey(ctx context.Context, id string) (*apikey.Key, error)
	// KeyBySecretHash finds a key by its current or previous secret's hash
	// (ErrNotFound if none); the caller tells which by comparing SecretHash.
	KeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, error)
	// ListManagedKeys returns an account's managed keys.
	ListManagedKeys(ctx context.Context, accountID string) ([]*apikey.Key, error)
	// RecordUsage moves last_used_at/ip forward, never backward.
	RecordUsage(ctx context.Context, batch []Usage) error
	// SpendCredits spends cost of key id's credits at now as one conditional
	// write would, exact whatever runs beside it (every replica included),
	// deciding with apikey.Credits.Spend on the row it holds: a refill due
	// at now (apikey.Credits.Due) is applied first, then cost is taken only
	// if that many are left. It returns what is left after the
	// spend and true, or, refused, what is left (nothing spent) and false.
	// ErrNotFound for no such key, ErrNoCredits for a key without credits.
	// Not a unit of work: nothing else is written and no audit event.
	SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (remaining int64, ok bool, err error)
	// ListKeys returns a page of an account's keys in (created_at, id) order,
	// ids compared bytewise. An unknown Status or a Limit below 1 is an error.
	ListKeys(ctx context.Context, f KeyFilter) ([]*apikey.Key, error)
	// ListAuditEvents returns a page of an account's events, newest first
	// (a Limit below 1 is an error). Changes hold JSON values as
	// encoding/json decodes them, except numbers: json.Number for an integer
	// that fits in 64 bits, float64 otherwise, so that they re-encode to the
	// bytes that were hashed.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]audit.Event, error)
	// AuditAccounts lists every account with its chain's head, for verification.
	AuditAccounts(ctx context.Context) ([]AuditHead, error)
	// AuditChain returns an account's events in ascending seq.
	AuditChain(ctx context.Context, accountID string) ([]audit.Event, error)
	// InTx runs fn in one transaction: committed when fn returns nil, rolled
	// back (nothing written) when it returns an error, which InTx returns.
	// A store may roll a run of fn back and run it again, once, in a new
	// transaction (PostgreSQL does when an account stands at its key cap:
	// see its KeyCapReached): fn must leave nothing behind but what it does
	// through the Tx, or set again what it sets.
	InTx(ctx context.Context, fn func(Tx) error) error
}

// Tx is what a unit of work can do. Rows it reads stay locked until commit
// (PostgreSQL row locks; SQLite holds the database's write lock for the whole
// transaction). To avoid deadlocks, a unit locks the account first, then keys
// in ascending id order.
//
// A write that answers nothing but an error (InsertKey, UpdateKey,
// ReleaseExpiredName, AppendAuditEvent) may be sent with the unit's next
// statement or its COMMIT (PostgreSQL pipelines them: fewer round trips
// while locks are held); its failure then comes from that later call or from
// InTx, mapped as its own would have been, and fails the unit all the same.
type Tx interface {
	// CreateAccount returns ErrAccountExists if the id is taken.
	CreateAccount(ctx context.Context, id string, now time.Time) error
	// LockAccount locks the account until commit (ErrNoAccount if none):
	// creates on one account run one after another, so a cap holds.
	LockAccount(ctx context.Context, id string) error
	// DeleteAccount removes an account, all its keys and its audit events:
	// only to undo a provisioning that did not complete (no secret of it was
	// ever shown).
	DeleteAccount(ctx context.Context, id string) error
	// Key reads a key and locks it until commit (ErrNotFound if none).
	Key(ctx context.Context, id string) (*apikey.Key, error)
	// KeyCapReached reports whether the account holds at least limit keys
	// that are neither deleted nor expired at now. The account's count of
	// keys not deleted (kept by the store on every write of a key) answers
	// while it is below limit, without reading a key; at limit or above, the
	// exact count is walked, stopping at limit.
	KeyCapReached(ctx context.Context, accountID string, now time.Time, limit int) (bool, error)
	// ReleaseExpiredName frees name, and every name with its name key
	// (namekey.Key), on the account's keys that expired by now, so that a new
	// key may take it.
	ReleaseExpiredName(ctx context.Context, accountID, name string, now time.Time) error
	// InsertKey returns ErrDuplicateName when a live key of the account holds
	// a name with the same name key (namekey.Key; InsertKey and UpdateKey set
	// k.NameKey from k.Name), ErrNoAccount when the account does not exist, and
	// ErrDuplicateKeyID when the id or secret hash collides.
	InsertKey(ctx context.Context, k *apikey.Key) error
	// UpdateKey writes k's mutable fields (name, secrets, hint, permissions,
	// metadata, status, deleted, expiry, updated_at).
	UpdateKey(ctx context.Context, k *apikey.Key) error
	// AppendAuditEvent seals e after the account's chain head and stores it
	// with the new head. The unit must hold the account's lock (LockAccount
	// or CreateAccount), so that appends to one chain run one at a time.
	// e.Mode "" is the repository's mode, another mode an error; e.Changes
	// becomes what reads return (see ListAuditEvents), which is what is
	// hashed. ErrNoAccount if the account does not exist.
	AppendAuditEvent(ctx context.Context, e *audit.Event) error

	// Idempotency records (see ClaimIdempotency, which composes the first
	// three): one per (account, idempotency key) in the repository's mode.
	//
	// InsertIdempotency stores r unless a record with its account and key
	// exists (then it changes nothing and reports false). On PostgreSQL a
	// concurrent unit's uncommitted insert of the same record makes it wait
	// for that unit's end.
	InsertIdempotency(ctx context.Context, r *IdempotencyRecord) (inserted bool, err error)
	// LockIdempotency reads a record and locks it until commit (ErrNotFound).
	LockIdempotency(ctx context.Context, accountID, key string) (*IdempotencyRecord, error)
	// ReplaceIdempotency overwrites the record of r's account and key with r
	// (a re-claim; ErrNotFound if there is none).
	ReplaceIdempotency(ctx context.Context, r *IdempotencyRecord) error
	// CompleteIdempotency marks the in-progress record whose claim is id done,
	// with the response's status and sealed body; ErrIdempotencyLost when no
	// such in-progress record exists (the claim was lost).
	CompleteIdempotency(ctx context.Context, accountID, key, id string, status int, body []byte) error
	// ReleaseIdempotency deletes the in-progress record whose claim is id
	// (nothing if it is not, any more): the request failed, changed
	// nothing, and may run again at once.
	ReleaseIdempotency(ctx context.Context, accountID, key, id string) error
	// RenewIdempotency moves the lease of the in-progress record whose claim
	// is id to until: its holder is alive and the request still running.
	// ErrIdempotencyLost when no such in-progress record exists (completed,
	// released, or re-claimed after its lease ran out).
	RenewIdempotency(ctx context.Context, accountID, key, id string, until time.Time) error
	// IdempotencyHolderGone reports whether the store instance holder (a
	// record's Holder) is known to have ended, so that its claims in
	// progress are dead whatever their lease says. SQLite knows (one lock
	// file per instance, held while it lives: see sqlite.Store.Instance);
	// PostgreSQL never does (replicas share the database: only a lease its
	// holder stopped renewing says so). An empty holder (a claim written
	// before migration 00010) is never known to have ended.
	IdempotencyHolderGone(ctx context.Context, holder string) (bool, error)
	// DeleteExpiredIdempotency deletes at most limit records whose ExpiresAt
	// is not after now (on PostgreSQL skipping rows another unit holds),
	// and returns how many it deleted.
	DeleteExpiredIdempotency(ctx context.Context, now time.Time, limit int) (int, error)
}

// KeySharer is a Tx that can read a key under a lock that other units may
// hold at the same time (PostgreSQL's FOR SHARE): a change to the key waits
// for every holder's commit, and a holder's read waits for a change in
// flight, exactly as with Key; but units that only read the key no longer
// wait for one another. A unit's caller re-read (policy.Recheck) takes it:
// every create made with one credential locked that key exclusively, so they
// ran one after another whatever account they wrote to. A unit that may
// change the key must lock it with Key instead (two shared holders that both
// upgrade deadlock). SQLite needs none (one writer at a time): Recheck falls
// back to Key.
type KeySharer interface {
	KeyShared(ctx context.Context, id string) (*apikey.Key, error)
}

// KeysLocker is a Tx that reads and locks several keys in one round trip
// (PostgreSQL pipelines the reads): LockKeys locks ids in the order given
// (callers sort them: the lock order), each under a shared lock
// (KeySharer) where shared[i], else as Key does, and returns them in that
// order, nil for a key that does not exist. A regenerate reads the target
// and the caller's key: the one locked first was held across the round trip
// that read the second, and every regenerate of a hot key waited for it.
type KeysLocker interface {
	LockKeys(ctx context.Context, ids []string, shared []bool) ([]*apikey.Key, error)
}

// IdempotencyReader reads idempotency records outside a unit of work. Both
// stores' repositories implement it; it is apart from Repository so that
// test doubles of a repository need not (the server reads records only
// inside units: ClaimIdempotency).
type IdempotencyReader interface {
	// GetIdempotency reads a record (ErrNotFound if none), expired or not:
	// the caller compares ExpiresAt with its clock.
	GetIdempotency(ctx context.Context, accountID, key string) (*IdempotencyRecord, error)
}

// Instanced is a Store that is one instance among those that may share its
// database: Instance names it (random, new at every Open), and the
// idempotency claims it writes carry that name (IdempotencyRecord.Holder).
// Both stores are.
type Instanced interface {
	Instance() string
}

// Idempotency record states.
const (
	IdempotencyInProgress = "in_progress"
	IdempotencyDone       = "done"
)

// IdempotencyRecord is what the server keeps of a request made with an
// Idempotency-Key: a fingerprint of the request and, once it completed, its
// response, sealed (encrypted) by the server: the store never sees a secret.
type IdempotencyRecord struct {
	AccountID string
	Key       string // the client's Idempotency-Key
	// ID is the claim: new at every claim, so that a claim whose lease ran
	// out cannot complete a record claimed again since. The server also
	// binds the sealed body to it (associated data).
	ID          string
	Fingerprint []byte // SHA-256 of the request (method, path, query, body, credential)
	State       string // IdempotencyInProgress or IdempotencyDone
	Status      int    // the response's HTTP status (done only)
	Body        []byte // the sealed response body (done only; nil when none was kept)
	CreatedAt   time.Time
	// LeaseUntil: an in-progress record older than this was abandoned (its
	// request's unit never committed, or its completion would be here) and
	// may be claimed again by the same request. Its holder renews it while
	// the request runs (RenewIdempotency), so a short lease lapses soon
	// after its holder died, never while it lives.
	LeaseUntil time.Time
	ExpiresAt  time.Time // after this the key may be used again
	// Holder is the store instance that wrote the claim (Instanced): the
	// store sets it when it inserts or replaces a record, whatever the
	// caller put here. A claim whose holder is gone
	// (IdempotencyHolderGone) is dead before its lease runs out.
	Holder string
}

// ClaimIdempotency claims r (in progress, r.ID the claim) inside tx, first
// deleting up to 100 expired records. It returns (nil, true) when r is now
// the claim: no record existed, the one that did has expired, or it is an
// in-progress record of the same request that is dead: its lease ran out,
// or its holder is known to have ended (IdempotencyHolderGone: a SQLite
// server restarted after a crash takes its predecessor's claims over at
// once). Otherwise it returns the existing record, unchanged, for the
// caller to judge (replay, still running, or a different request).
//
// A dead claim's request never committed (its unit completes the record),
// and the claim it left cannot complete any more (CompleteIdempotency
// matches the claim's id): taking it over runs the request once.
func ClaimIdempotency(ctx context.Context, tx Tx, r *IdempotencyRecord, now time.Time) (*IdempotencyRecord, bool, error) {
	if _, err := tx.DeleteExpiredIdempotency(ctx, now, 100); err != nil {
		return nil, false, err
	}
	ok, err := tx.InsertIdempotency(ctx, r)
	if err != nil || ok {
		return nil, ok, err
	}
	cur, err := tx.LockIdempotency(ctx, r.AccountID, r.Key)
	if err != nil {
		return nil, false, err
	}
	abandoned := false
	if cur.State == IdempotencyInProgress && bytes.Equal(cur.Fingerprint, r.Fingerprint) {
		abandoned = !cur.LeaseUntil.After(now)
		if !abandoned && cur.Holder != "" {
			if abandoned, err = tx.IdempotencyHolderGone(ctx, cur.Holder); err != nil {
				return nil, false, err
			}
		}
	}
	if !cur.ExpiresAt.After(now) || abandoned {
		return nil, true, tx.ReplaceIdempotency(ctx, r)
	}
	return cur, false, nil
}

// KeyFilter selects a page of an account's keys, oldest first.
type KeyFilter struct {
	AccountID string
	// Status is "", ACTIVE, INACTIVE or EXPIRED (an ACTIVE key whose
	// expires_at has passed at Now; ACTIVE then means not expired).
	Status    string
	Type      string // "", SECRET or PUBLISHABLE
	Managed   *bool
	CreatedBy string // the creator's id ("" for any)
	Deleted   bool   // deleted keys only, instead of the keys not deleted
	Now       time.Time
	After     *KeyCursor // the last key of the previous page
	Limit     int
}

// KeyCursor is a position in the (created_at, id) order.
type KeyCursor struct {
	CreatedAt time.Time
	ID        string
}

// AuditFilter selects a page of an account's events, newest first.
type AuditFilter struct {
	AccountID string
	KeyID     string // "" for any
	Action    string // "" for any
	Before    int64  // only events with a smaller seq; 0 for the newest
	Limit     int
}

// AuditHead is where an account's chain ends, as the account row records it.
type AuditHead struct {
	AccountID string
	Seq       int64
	Hash      string
}

// InsertKey stores k in a unit of its own (tools and tests).
func InsertKey(ctx context.Context, r Repository, k *apikey.Key) error {
	return r.InTx(ctx, func(tx Tx) error { return tx.InsertKey(ctx, k) })
}

// CreateAccount creates an account in a unit of its own (tools and tests).
func CreateAccount(ctx context.Context, r Repository, id string, now time.Time) error {
	return r.InTx(ctx, func(tx Tx) error { return tx.CreateAccount(ctx, id, now) })
}

// UpdateKey reads a key under lock, lets fn change it, and writes it back in
// a unit of its own (tools and tests); an error from fn writes nothing.
func UpdateKey(ctx context.Context, r Repository, id string, fn func(*apikey.Key) error) (*apikey.Key, error) {
	var out *apikey.Key
	err := r.InTx(ctx, func(tx Tx) error {
		k, err := tx.Key(ctx, id)
		if err != nil {
			return err
		}
		if err := fn(k); err != nil {
			return err
		}
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		out = k
		return nil
	})
	return out, err
}
