package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

func idemRecord(account, key, id string, fp byte, now time.Time) *store.IdempotencyRecord {
	return &store.IdempotencyRecord{
		AccountID: account, Key: key, ID: id, Fingerprint: bytes.Repeat([]byte{fp}, 32),
		State: store.IdempotencyInProgress, CreatedAt: now,
		LeaseUntil: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour),
	}
}

func claim(t *testing.T, r store.Repository, rec *store.IdempotencyRecord, now time.Time) (*store.IdempotencyRecord, bool) {
	t.Helper()
	var (
		cur *store.IdempotencyRecord
		ok  bool
	)
	err := r.InTx(t.Context(), func(tx store.Tx) error {
		var err error
		cur, ok, err = store.ClaimIdempotency(t.Context(), tx, rec, now)
		return err
	})
	if err != nil {
		t.Fatalf("claim %s/%s: %v", rec.AccountID, rec.Key, err)
	}
	return cur, ok
}

func getIdem(t *testing.T, r store.Repository, account, key string) (*store.IdempotencyRecord, error) {
	t.Helper()
	ir, ok := r.(store.IdempotencyReader)
	if !ok {
		t.Fatalf("%T does not implement store.IdempotencyReader", r)
	}
	return ir.GetIdempotency(t.Context(), account, key)
}

func complete(r store.Repository, rec *store.IdempotencyRecord, status int, body []byte) error {
	return r.InTx(context.Background(), func(tx store.Tx) error {
		return tx.CompleteIdempotency(context.Background(), rec.AccountID, rec.Key, rec.ID, status, body)
	})
}

// testIdempotency: claim, complete, replay reads, release, lease, expiry,
// modes and accounts apart.
func testIdempotency(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Sandbox)
	now := at(0)
	a := idemRecord("acct_a", "k1", "claim-1", 1, now)
	if cur, ok := claim(t, r, a, now); !ok || cur != nil {
		t.Fatalf("first claim: %v %v; want claimed", cur, ok)
	}
	got, err := getIdem(t, r, "acct_a", "k1")
	if err != nil || got.State != store.IdempotencyInProgress || got.ID != "claim-1" || !bytes.Equal(got.Fingerprint, a.Fingerprint) || got.Body != nil {
		t.Fatalf("claimed record: %+v %v", got, err)
	}
	checkTime(t, "created_at", got.CreatedAt, now)
	checkTime(t, "lease_until", got.LeaseUntil, now.Add(time.Minute))
	checkTime(t, "expires_at", got.ExpiresAt, now.Add(24*time.Hour))
	if in, ok := s.(store.Instanced); ok && (got.Holder != in.Instance() || a.Holder != in.Instance() || got.Holder == "") {
		t.Errorf("claim holder %q (the claim says %q); want the store instance %q", got.Holder, a.Holder, in.Instance())
	}

	// Renewal: the claim's holder moves its lease; another claim id cannot.
	if err := renew(r, a, now.Add(90*time.Second)); err != nil {
		t.Fatalf("renew: %v", err)
	}
	got, _ = getIdem(t, r, "acct_a", "k1")
	checkTime(t, "lease_until renewed", got.LeaseUntil, now.Add(90*time.Second))
	wantErr(t, "renew by another claim", renew(r, idemRecord("acct_a", "k1", "claim-other", 1, now), now.Add(time.Hour)), store.ErrIdempotencyLost)

	// A second claim of the same key sees the claim, in progress.
	b := idemRecord("acct_a", "k1", "claim-2", 1, now.Add(time.Second))
	if cur, ok := claim(t, r, b, now.Add(time.Second)); ok || cur == nil || cur.ID != "claim-1" || cur.State != store.IdempotencyInProgress {
		t.Fatalf("second claim: %+v %v; want the first claim", cur, ok)
	}
	// Only the claim completes it.
	wantErr(t, "complete by another claim", complete(r, b, 201, []byte("x")), store.ErrIdempotencyLost)
	if err := complete(r, a, 201, []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	wantErr(t, "complete twice", complete(r, a, 201, []byte("again")), store.ErrIdempotencyLost)
	wantErr(t, "renew a completed claim", renew(r, a, now.Add(time.Hour)), store.ErrIdempotencyLost)
	got, _ = getIdem(t, r, "acct_a", "k1")
	if got.State != store.IdempotencyDone || got.Status != 201 || string(got.Body) != "sealed" {
		t.Fatalf("completed record: %+v", got)
	}
	// Done records are never re-claimed before they expire, lease or not.
	if cur, ok := claim(t, r, b, now.Add(2*time.Hour)); ok || cur.State != store.IdempotencyDone {
		t.Fatalf("claim of a done record: %+v %v", cur, ok)
	}
	// Release touches in-progress claims only.
	if err := r.InTx(t.Context(), func(tx store.Tx) error { return tx.ReleaseIdempotency(t.Context(), "acct_a", "k1", "claim-1") }); err != nil {
		t.Fatal(err)
	}
	if _, err := getIdem(t, r, "acct_a", "k1"); err != nil {
		t.Fatalf("release deleted a done record: %v", err)
	}

	// Other accounts and the other mode are apart.
	if _, ok := claim(t, r, idemRecord("acct_b", "k1", "claim-b", 2, now), now); !ok {
		t.Fatal("another account's key was taken")
	}
	if _, ok := claim(t, s.Repo(apikey.Live), idemRecord("acct_a", "k1", "claim-live", 3, now), now); !ok {
		t.Fatal("the other mode's key was taken")
	}

	// A released claim frees the key at once.
	c := idemRecord("acct_a", "k2", "claim-c", 4, now)
	claim(t, r, c, now)
	if err := r.InTx(t.Context(), func(tx store.Tx) error { return tx.ReleaseIdempotency(t.Context(), "acct_a", "k2", "claim-c") }); err != nil {
		t.Fatal(err)
	}
	if _, err := getIdem(t, r, "acct_a", "k2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("released record still there: %v", err)
	}

	// Lease: an abandoned claim of the same request is claimed again after
	// it; a different request never takes it; the old claim cannot complete.
	d := idemRecord("acct_a", "k3", "claim-d", 5, now)
	claim(t, r, d, now)
	other := idemRecord("acct_a", "k3", "claim-x", 6, now.Add(2*time.Minute))
	if cur, ok := claim(t, r, other, now.Add(2*time.Minute)); ok || cur.ID != "claim-d" {
		t.Fatalf("a different request took an abandoned claim: %+v %v", cur, ok)
	}
	early := idemRecord("acct_a", "k3", "claim-early", 5, now.Add(30*time.Second))
	if _, ok := claim(t, r, early, now.Add(30*time.Second)); ok {
		t.Fatal("re-claimed within the lease")
	}
	again := idemRecord("acct_a", "k3", "claim-d2", 5, now.Add(2*time.Minute))
	if cur, ok := claim(t, r, again, now.Add(2*time.Minute)); !ok {
		t.Fatalf("the same request could not re-claim after the lease: %+v", cur)
	}
	wantErr(t, "complete by the lapsed claim", complete(r, d, 201, []byte("late")), store.ErrIdempotencyLost)
	if err := complete(r, again, 200, []byte("won")); err != nil {
		t.Fatal(err)
	}

	// Expiry: a claim sweeps expired records (bounded) and takes an expired key.
	later := now.Add(24*time.Hour + time.Second)
	e := idemRecord("acct_a", "k1", "claim-e", 9, later) // another request: the old one expired
	if cur, ok := claim(t, r, e, later); !ok {
		t.Fatalf("expired key not re-claimed: %+v", cur)
	}
	if _, err := getIdem(t, r, "acct_b", "k1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired record was not swept: %v", err)
	}
	if _, err := getIdem(t, r, "acct_a", "k3"); err != nil {
		t.Fatalf("a record not expired yet was swept: %v", err)
	}
	var n int
	if err := r.InTx(t.Context(), func(tx store.Tx) error {
		var err error
		n, err = tx.DeleteExpiredIdempotency(t.Context(), later.Add(48*time.Hour), 1)
		return err
	}); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredIdempotency limit 1: %d, %v", n, err)
	}
}

func renew(r store.Repository, rec *store.IdempotencyRecord, until time.Time) error {
	return r.InTx(context.Background(), func(tx store.Tx) error {
		return tx.RenewIdempotency(context.Background(), rec.AccountID, rec.Key, rec.ID, until)
	})
}

// testIdempotencyConcurrentClaims: of many units claiming one key at once,
// exactly one claims it.
func testIdempotencyConcurrentClaims(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Sandbox)
	now := at(0)
	const n = 12
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		claimed int
		errs    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rec := idemRecord("acct_a", "race", fmt.Sprintf("claim-%d", i), 1, now)
			err := r.InTx(context.Background(), func(tx store.Tx) error {
				_, ok, err := store.ClaimIdempotency(context.Background(), tx, rec, now)
				if ok {
					mu.Lock()
					claimed++
					mu.Unlock()
				}
				return err
			})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 || claimed != 1 {
		t.Fatalf("%d claims, errors %v; want exactly one claim", claimed, errs)
	}
}
