package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

func creditsAt(c *apikey.Credits) string {
	if c == nil {
		return "-"
	}
	return c.RefilledAt.UTC().Format(time.RFC3339)
}

func utcAt(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

// testCredits: a key's credits (migration 00014) come back as written, by
// id and by hash, with and without a refill; replaced by UpdateKey.
func testCredits(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	k := newKey("key_1", "acct_1", "metered")
	k.Credits = &apikey.Credits{Remaining: 1_000_000_000_000, RefilledAt: utcAt("2026-03-10T15:04:05Z")}
	mustInsert(t, r, k)
	want := clone(k)
	checkKey(t, "GetKey", mustGet(t, r, "key_1"), want)
	byHash, err := r.KeyBySecretHash(t.Context(), k.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, "KeyBySecretHash", byHash, want)
	for _, c := range []*apikey.Credits{
		{Remaining: 0, Refill: &apikey.CreditRefill{Amount: 10, Interval: apikey.RefillDaily}, RefilledAt: utcAt("2026-03-11T00:00:00Z")},
		{Remaining: 7, Refill: &apikey.CreditRefill{Amount: 1_000_000_000_000, Interval: apikey.RefillMonthly, Day: 31}, RefilledAt: utcAt("2026-04-30T01:00:00Z")},
	} {
		want.Credits = c
		mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.Credits = c })
		checkKey(t, "GetKey after update to "+c.String(), mustGet(t, r, "key_1"), want)
	}
	plain := newKey("key_2", "acct_1", "plain")
	mustInsert(t, r, plain)
	if got := mustGet(t, r, "key_2"); got.Credits != nil {
		t.Fatalf("a key without credits reads back %v", got.Credits)
	}
}

// spendOK spends and fails the test on an error.
func spendOK(t *testing.T, r store.Repository, id string, cost int64, now time.Time) (int64, bool) {
	t.Helper()
	rem, ok, err := r.SpendCredits(t.Context(), id, cost, now)
	if err != nil {
		t.Fatalf("SpendCredits(%s, %d): %v", id, cost, err)
	}
	return rem, ok
}

// testSpendCredits: a spend takes exactly cost while that many are left; a
// refused one changes nothing (not even a due refill's time) and says what
// is left; cost 0 always passes; unknown keys and keys without credits are
// errors, and nothing about another key changes.
func testSpendCredits(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	now := utcAt("2026-03-10T12:00:00Z")
	k := newKey("key_1", "acct_1", "metered")
	k.Credits = &apikey.Credits{Remaining: 5, RefilledAt: now}
	mustInsert(t, r, k)
	other := newKey("key_2", "acct_1", "other")
	other.Credits = &apikey.Credits{Remaining: 5, RefilledAt: now}
	mustInsert(t, r, other)
	mustInsert(t, r, newKey("key_3", "acct_1", "plain"))
	for _, c := range []struct {
		cost, want int64
		ok         bool
	}{{3, 2, true}, {3, 2, false}, {0, 2, true}, {2, 0, true}, {1, 0, false}, {0, 0, true}} {
		if rem, ok := spendOK(t, r, "key_1", c.cost, now); rem != c.want || ok != c.ok {
			t.Fatalf("spend %d: %d, %v; want %d, %v", c.cost, rem, ok, c.want, c.ok)
		}
		if got := mustGet(t, r, "key_1").Credits; got.Remaining != c.want || !got.RefilledAt.Equal(now) {
			t.Fatalf("after spend %d the key reads %v at %s", c.cost, got, creditsAt(got))
		}
	}
	if got := mustGet(t, r, "key_2").Credits; got.Remaining != 5 {
		t.Fatalf("another key's credits moved: %v", got)
	}
	if _, _, err := r.SpendCredits(t.Context(), "key_none", 1, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown key: %v, want ErrNotFound", err)
	}
	if _, _, err := r.SpendCredits(t.Context(), "key_3", 1, now); !errors.Is(err, store.ErrNoCredits) {
		t.Fatalf("key without credits: %v, want ErrNoCredits", err)
	}
	if _, _, err := s.Repo(apikey.Sandbox).SpendCredits(t.Context(), "key_1", 1, now); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the other mode's key: %v, want ErrNotFound", err)
	}
	// A refill that is due but smaller than the cost: refused, nothing
	// written, the refilled amount is what is left.
	mustUpdate(t, r, "key_2", func(k *apikey.Key) {
		k.Credits = &apikey.Credits{Remaining: 1, Refill: &apikey.CreditRefill{Amount: 4, Interval: apikey.RefillDaily}, RefilledAt: now}
	})
	next := utcAt("2026-03-11T08:00:00Z")
	if rem, ok := spendOK(t, r, "key_2", 5, next); ok || rem != 4 {
		t.Fatalf("cost 5 after a refill of 4: %d, %v", rem, ok)
	}
	if got := mustGet(t, r, "key_2").Credits; got.Remaining != 1 || !got.RefilledAt.Equal(now) {
		t.Fatalf("a refused spend wrote %v at %s", got, creditsAt(got))
	}
}

// testSpendCreditsConcurrent: 64 spends of 1 at once on 37 credits: exactly
// 37 succeed, each leaving a different count, and none is left.
func testSpendCreditsConcurrent(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	now := utcAt("2026-03-10T12:00:00Z")
	k := newKey("key_1", "acct_1", "metered")
	k.Credits = &apikey.Credits{Remaining: 37, Refill: &apikey.CreditRefill{Amount: 37, Interval: apikey.RefillMonthly, Day: 1}, RefilledAt: now}
	mustInsert(t, r, k)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]bool{}
		errs []error
	)
	for range 64 {
		wg.Go(func() {
			rem, ok, err := r.SpendCredits(t.Context(), "key_1", 1, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case ok && seen[rem]:
				errs = append(errs, errors.New("two spends left the same count"))
			case ok:
				seen[rem] = true
			case rem != 0:
				errs = append(errs, errors.New("a refused spend with credits left"))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if len(seen) != 37 {
		t.Fatalf("%d spends succeeded, want 37", len(seen))
	}
	if got := mustGet(t, r, "key_1").Credits.Remaining; got != 0 {
		t.Fatalf("%d left, want 0", got)
	}
}

// testCreditRefills: a refill puts remaining back to its amount once per
// boundary (00:00 UTC daily; monthly on its day, the last day of a shorter
// month), applied by the spend that first comes after it, and reads agree
// (apikey.Credits.At) before it is written.
func testCreditRefills(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	k := newKey("key_d", "acct_1", "daily")
	k.Credits = &apikey.Credits{Remaining: 5, Refill: &apikey.CreditRefill{Amount: 10, Interval: apikey.RefillDaily}, RefilledAt: utcAt("2026-03-10T15:00:00Z")}
	mustInsert(t, r, k)
	m := newKey("key_m", "acct_1", "monthly")
	m.Credits = &apikey.Credits{Remaining: 3, Refill: &apikey.CreditRefill{Amount: 100, Interval: apikey.RefillMonthly, Day: 31}, RefilledAt: utcAt("2026-04-01T00:00:00Z")}
	mustInsert(t, r, m)
	y := newKey("key_y", "acct_1", "mid-month")
	y.Credits = &apikey.Credits{Remaining: 2, Refill: &apikey.CreditRefill{Amount: 50, Interval: apikey.RefillMonthly, Day: 15}, RefilledAt: utcAt("2025-12-20T00:00:00Z")}
	mustInsert(t, r, y)
	for i, c := range []struct {
		id, at     string
		cost, want int64
		ok         bool
	}{
		{"key_d", "2026-03-10T23:59:59Z", 5, 0, true},
		{"key_d", "2026-03-10T23:59:59Z", 1, 0, false},
		{"key_d", "2026-03-11T00:00:00Z", 1, 9, true}, // the day's boundary: refilled, then spent
		{"key_d", "2026-03-11T23:00:00Z", 1, 8, true}, // once a day
		{"key_d", "2026-03-14T09:00:00Z", 0, 10, true},
		{"key_m", "2026-04-29T23:59:59Z", 1, 2, true},
		{"key_m", "2026-04-30T00:00:00Z", 1, 99, true}, // day 31 in a 30-day month: its last day
		{"key_m", "2026-05-30T12:00:00Z", 1, 98, true}, // May has a 31st: not yet
		{"key_m", "2026-05-31T00:00:00Z", 1, 99, true},
		{"key_m", "2026-06-29T00:00:00Z", 99, 0, true},
		{"key_y", "2026-01-14T23:59:59Z", 1, 1, true}, // the last boundary (Dec 15) came before the set
		{"key_y", "2026-01-15T00:00:00Z", 1, 49, true},
	} {
		now := utcAt(c.at)
		if before := mustGet(t, r, c.id).Credits.Effective(now); c.ok && before != c.want+c.cost {
			t.Fatalf("step %d: a read at %s says %d left, want %d", i, c.at, before, c.want+c.cost)
		}
		if rem, ok := spendOK(t, r, c.id, c.cost, now); rem != c.want || ok != c.ok {
			t.Fatalf("step %d: %s spends %d at %s: %d, %v; want %d, %v", i, c.id, c.cost, c.at, rem, ok, c.want, c.ok)
		}
		if got := mustGet(t, r, c.id).Credits.Effective(now); got != c.want {
			t.Fatalf("step %d: a read after says %d", i, got)
		}
	}
}

// testSpendCreditsMixedCosts: 90 spends of costs 0 to 6 at once on 150
// credits (a store may decide concurrent spends together, as PostgreSQL's
// does per replica): every credit spent is a spend that succeeded, no
// success spent what was not there, a refusal had more to spend than it was
// told was left, and a spend whose context is already done changes nothing
// when it fails.
func testSpendCreditsMixedCosts(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	now := utcAt("2026-03-10T12:00:00Z")
	k := newKey("key_1", "acct_1", "metered")
	k.Credits = &apikey.Credits{Remaining: 150, RefilledAt: now}
	mustInsert(t, r, k)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		spent int64
		errs  []error
	)
	for i := range 90 {
		cost := int64(i % 7)
		wg.Go(func() {
			rem, ok, err := r.SpendCredits(t.Context(), "key_1", cost, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case rem < 0:
				errs = append(errs, fmt.Errorf("cost %d: %d left", cost, rem))
			case ok:
				spent += cost
			case cost <= rem:
				errs = append(errs, fmt.Errorf("cost %d refused with %d left", cost, rem))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	left := mustGet(t, r, "key_1").Credits.Remaining
	if spent+left != 150 {
		t.Fatalf("successful spends took %d and %d are left: %d credits appeared or vanished", spent, left, 150-spent-left)
	}
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, err := r.SpendCredits(done, "key_1", 0, now); err == nil {
		t.Log("a spend with a done context succeeded (the store did not need the context)")
	}
	if got := mustGet(t, r, "key_1").Credits.Remaining; got != left {
		t.Fatalf("a spend of 0 with a done context moved the credits: %d -> %d", left, got)
	}
	// Spends whose contexts are already done, among live ones: no credit
	// appears or vanishes, and a live one does not fail (a store that
	// decides spends together must not let a done one's context decide
	// the others').
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.Credits = &apikey.Credits{Remaining: 100, RefilledAt: now} })
	spent, errs = 0, nil
	live := t.Context()
	for i := range 60 {
		wg.Go(func() {
			c := live
			if i%2 == 1 {
				c = done
			}
			_, ok, err := r.SpendCredits(c, "key_1", 1, now)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil && i%2 == 0:
				errs = append(errs, fmt.Errorf("a live spend failed beside done ones: %w", err))
			case ok:
				spent++
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if got := mustGet(t, r, "key_1").Credits.Remaining; spent+got != 100 || spent < 30 {
		t.Fatalf("%d spends succeeded (at least the 30 live ones should), %d left of 100", spent, got)
	}
}
