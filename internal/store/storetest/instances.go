package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// RunInstances runs the suite of idempotency claims held by store instances
// (issue 18): two stores opened on one database are two instances, as two
// server processes are. newDB makes a fresh, empty database and returns a
// function that opens a new instance of it (its stores must be Instanced;
// each test closes what it opens). holderDeathKnown says whether the store
// knows that an instance has ended (SQLite: a claim of a closed or killed
// instance is taken over at once), or learns it only from a lease that was
// not renewed (PostgreSQL, whose replicas share the database).
func RunInstances(t *testing.T, newDB func(t *testing.T) (open func() store.Store), holderDeathKnown bool) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open func() store.Store, holderDeathKnown bool)
	}{
		{"UnrenewedLeaseTakenOver", testUnrenewedLeaseTakenOver},
		{"RenewedLeaseKept", testRenewedLeaseKept},
		{"EndedHolder", testEndedHolder},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newDB(t), holderDeathKnown)
		})
	}
}

// openInstance opens an instance, closed when the test ends unless closed
// before (then its error is the test's).
func openInstance(t *testing.T, open func() store.Store) (s store.Store, instance string, stop func()) {
	t.Helper()
	s = open()
	in, ok := s.(store.Instanced)
	if !ok || in.Instance() == "" {
		t.Fatalf("%T is not a store instance (store.Instanced)", s)
	}
	closed := false
	stop = func() {
		t.Helper()
		if closed {
			return
		}
		closed = true
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	}
	t.Cleanup(stop)
	return s, in.Instance(), stop
}

const testLease = 5 * time.Second

func leased(account, key, id string, fp byte, now time.Time) *store.IdempotencyRecord {
	r := idemRecord(account, key, id, fp, now)
	r.LeaseUntil = now.Add(testLease)
	return r
}

// testUnrenewedLeaseTakenOver: another live instance's claim is its own
// while its lease lasts; once the lease ran out unrenewed, the same request
// takes it over, a different request never, and the old claim can neither
// renew nor complete.
func testUnrenewedLeaseTakenOver(t *testing.T, open func() store.Store, _ bool) {
	a, idA, _ := openInstance(t, open)
	b, idB, _ := openInstance(t, open)
	if idA == idB {
		t.Fatalf("two opens are one instance %q", idA)
	}
	ra, rb := a.Repo(apikey.Sandbox), b.Repo(apikey.Sandbox)
	now := at(0)
	first := leased("acct_a", "k", "claim-a", 1, now)
	if _, ok := claim(t, ra, first, now); !ok {
		t.Fatal("first claim refused")
	}
	// A live holder, within its lease: B sees A's claim running.
	retry := leased("acct_a", "k", "claim-b", 1, now.Add(time.Second))
	cur, ok := claim(t, rb, retry, now.Add(time.Second))
	if ok || cur.ID != "claim-a" || cur.Holder != idA {
		t.Fatalf("retry within a live instance's lease: %+v %v; want A's claim, held by %s", cur, ok, idA)
	}
	// A different request never takes it, lapsed or not.
	later := now.Add(testLease + time.Second)
	if cur, ok := claim(t, rb, leased("acct_a", "k", "claim-x", 2, later), later); ok || cur.ID != "claim-a" {
		t.Fatalf("a different request took a lapsed claim: %+v %v", cur, ok)
	}
	// Lapsed, unrenewed: the same request takes it over, as B's.
	retry = leased("acct_a", "k", "claim-b", 1, later)
	if cur, ok := claim(t, rb, retry, later); !ok {
		t.Fatalf("retry after the lease ran out unrenewed: %+v; want it taken over", cur)
	}
	got, err := getIdem(t, rb, "acct_a", "k")
	if err != nil || got.ID != "claim-b" || got.Holder != idB || got.State != store.IdempotencyInProgress {
		t.Fatalf("taken-over record: %+v %v; want claim-b held by %s", got, err, idB)
	}
	checkTime(t, "lease_until taken over", got.LeaseUntil, later.Add(testLease))
	// A, merely slow, comes back: its claim is lost, so only B's execution commits.
	wantErr(t, "renew by the lapsed holder", renew(ra, first, later.Add(testLease)), store.ErrIdempotencyLost)
	wantErr(t, "complete by the lapsed holder", complete(ra, first, 201, []byte("late")), store.ErrIdempotencyLost)
	if err := complete(rb, retry, 201, []byte("won")); err != nil {
		t.Fatalf("complete by the new holder: %v", err)
	}
	if got, _ := getIdem(t, ra, "acct_a", "k"); got.State != store.IdempotencyDone || !bytes.Equal(got.Body, []byte("won")) {
		t.Fatalf("completed record: %+v", got)
	}
}

// testRenewedLeaseKept: a claim its holder keeps renewing is never taken
// over, however long its request runs; once renewals stop, it lapses one
// lease after the last.
func testRenewedLeaseKept(t *testing.T, open func() store.Store, _ bool) {
	a, _, _ := openInstance(t, open)
	b, _, _ := openInstance(t, open)
	ra, rb := a.Repo(apikey.Sandbox), b.Repo(apikey.Sandbox)
	now := at(0)
	held := leased("acct_a", "k", "claim-a", 1, now)
	if _, ok := claim(t, ra, held, now); !ok {
		t.Fatal("first claim refused")
	}
	// Renewed every 4 s for 40 s: a retry every 2 s never gets in.
	var last time.Time
	for d := 4 * time.Second; d <= 40*time.Second; d += 4 * time.Second {
		last = now.Add(d)
		if err := renew(ra, held, last.Add(testLease)); err != nil {
			t.Fatalf("renew at +%v: %v", d, err)
		}
		for _, probe := range []time.Duration{0, 2 * time.Second} {
			when := last.Add(probe)
			if cur, ok := claim(t, rb, leased("acct_a", "k", "claim-b", 1, when), when); ok || cur.ID != "claim-a" {
				t.Fatalf("a renewed lease was taken over at +%v: %+v %v", d+probe, cur, ok)
			}
		}
	}
	// The last renewal's lease runs out: taken over.
	when := last.Add(testLease)
	if cur, ok := claim(t, rb, leased("acct_a", "k", "claim-b", 1, when), when); !ok {
		t.Fatalf("lease lapsed %v after the last renewal, not taken over: %+v", testLease, cur)
	}
	wantErr(t, "complete by the holder that stopped renewing", complete(ra, held, 201, []byte("late")), store.ErrIdempotencyLost)
}

// testEndedHolder: the restart case. Instance A claims and ends (closed as a
// server that stops, or as the kernel ends a killed one: its lock goes).
// Where the store knows (SQLite), a new instance takes A's claim over at
// once, for the same request only; elsewhere (PostgreSQL) it waits for the
// lease. Another instance still open is never taken for ended.
func testEndedHolder(t *testing.T, open func() store.Store, holderDeathKnown bool) {
	a, idA, closeA := openInstance(t, open)
	now := at(0)
	dead := leased("acct_a", "k", "claim-a", 1, now)
	if _, ok := claim(t, a.Repo(apikey.Sandbox), dead, now); !ok {
		t.Fatal("first claim refused")
	}
	// Another request's claim of a live instance, for the end.
	live, idLive, _ := openInstance(t, open)
	running := leased("acct_a", "k2", "claim-live", 3, now)
	if _, ok := claim(t, live.Repo(apikey.Sandbox), running, now); !ok {
		t.Fatal("live instance's claim refused")
	}
	closeA()
	b, idB, _ := openInstance(t, open)
	rb := b.Repo(apikey.Sandbox)
	soon := now.Add(time.Second) // well within A's lease
	if cur, ok := claim(t, rb, leased("acct_a", "k", "claim-x", 2, soon), soon); ok || cur.ID != "claim-a" || cur.Holder != idA {
		t.Fatalf("a different request took an ended instance's claim: %+v %v", cur, ok)
	}
	retry := leased("acct_a", "k", "claim-b", 1, soon)
	cur, ok := claim(t, rb, retry, soon)
	if holderDeathKnown != ok {
		t.Fatalf("retry within the lease of an ended instance: claimed %v (%+v); want %v", ok, cur, holderDeathKnown)
	}
	if !ok {
		// Only the lease tells: one lease after the claim, taken over.
		when := now.Add(testLease)
		if cur, ok := claim(t, rb, leased("acct_a", "k", "claim-b", 1, when), when); !ok {
			t.Fatalf("retry once the ended instance's lease ran out: %+v", cur)
		}
	}
	if got, err := getIdem(t, rb, "acct_a", "k"); err != nil || got.ID != "claim-b" || got.Holder != idB {
		t.Fatalf("record after the takeover: %+v %v; want claim-b held by %s", got, err, idB)
	}
	// The instance still open keeps its claim within its lease, whatever
	// ended around it.
	if cur, ok := claim(t, rb, leased("acct_a", "k2", "claim-c", 3, soon), soon); ok || cur.ID != "claim-live" || cur.Holder != idLive {
		t.Fatalf("a live instance's claim was taken over: %+v %v", cur, ok)
	}
}
