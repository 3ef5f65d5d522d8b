package credcache

import (
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
)

// fakeClock is a settable TTL clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newTest(t *testing.T, o Options) (*Cache, *fakeClock) {
	t.Helper()
	clk := &fakeClock{t: time.Unix(1_700_000_000, 0)}
	if o.TTL == 0 {
		o.TTL = 5 * time.Second
	}
	o.Now = clk.Now
	return New(o), clk
}

func hashOf(s string) []byte { return keys.Hash(s) }

func key(id string, secret string) *apikey.Key {
	return &apikey.Key{
		ID: id, AccountID: "acct_1", Type: apikey.TypeSecret, Status: apikey.StatusActive,
		SecretHash:  hashOf(secret),
		Permissions: map[string][]string{"payment": {"read"}, "refund": {}},
		Metadata:    map[string]string{"team": "a"},
	}
}

func mustHit(t *testing.T, c *Cache, mode apikey.Mode, secret, wantID string) {
	t.Helper()
	k, hit := c.Get(mode, hashOf(secret))
	if !hit || k == nil || k.ID != wantID {
		t.Fatalf("Get(%s): %v %v, want a hit on %s", secret, k, hit, wantID)
	}
}

func mustMiss(t *testing.T, c *Cache, mode apikey.Mode, secret string) {
	t.Helper()
	if k, hit := c.Get(mode, hashOf(secret)); hit {
		t.Fatalf("Get(%s): %v, want a miss", secret, k)
	}
}

// consistent checks the index against the LRU: every indexed hash is
// cached under its key, every cached entry is indexed.
func consistent(t *testing.T, c *Cache) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for id, hashes := range c.byID {
		if len(hashes) == 0 {
			t.Fatalf("empty index entry for %v", id)
		}
		for _, h := range hashes {
			e, ok := c.pos.Peek(entryKey{id.mode, h})
			if !ok || e.key.ID != id.id {
				t.Fatalf("index names %v for a hash the cache does not hold", id)
			}
			n++
		}
	}
	if n != c.pos.Len() {
		t.Fatalf("%d hashes indexed, %d cached", n, c.pos.Len())
	}
}

func TestNilAndZeroTTLCacheNothing(t *testing.T) {
	if New(Options{TTL: 0}) != nil {
		t.Fatal("TTL 0 must mean no cache")
	}
	var c *Cache
	c.Put(c.Begin(), apikey.Live, hashOf("a"), key("key_a", "a"))
	c.PutMissing(c.Begin(), apikey.Live, hashOf("b"))
	c.Invalidate(apikey.Live, "key_a")
	c.Flush()
	if _, hit := c.Get(apikey.Live, hashOf("a")); hit || c.Active() {
		t.Fatal("a nil cache answered")
	}
}

func TestTTL(t *testing.T) {
	c, clk := newTest(t, Options{TTL: 5 * time.Second})
	c.Put(c.Begin(), apikey.Live, hashOf("a"), key("key_a", "a"))
	c.PutMissing(c.Begin(), apikey.Live, hashOf("forged"))
	clk.Advance(4999 * time.Millisecond)
	mustHit(t, c, apikey.Live, "a", "key_a")
	if k, hit := c.Get(apikey.Live, hashOf("forged")); !hit || k != nil {
		t.Fatal("negative entry lost before its TTL")
	}
	clk.Advance(time.Millisecond)
	mustMiss(t, c, apikey.Live, "a")
	mustMiss(t, c, apikey.Live, "forged")
	if p, n := c.Len(); p != 0 || n != 0 {
		t.Fatalf("expired entries kept: %d %d", p, n)
	}
	consistent(t, c)
}

func TestModesAreSeparate(t *testing.T) {
	c, _ := newTest(t, Options{})
	c.Put(c.Begin(), apikey.Sandbox, hashOf("a"), key("key_a", "a"))
	mustMiss(t, c, apikey.Live, "a")
	c.Invalidate(apikey.Live, "key_a")
	mustHit(t, c, apikey.Sandbox, "a", "key_a")
}

// Invalidating a key id drops its current and previous secret's entries,
// and nothing else.
func TestInvalidateByKeyID(t *testing.T) {
	c, _ := newTest(t, Options{})
	rotated := key("key_x", "new")
	rotated.PrevSecretHash = hashOf("old")
	c.Put(c.Begin(), apikey.Live, hashOf("new"), rotated)
	c.Put(c.Begin(), apikey.Live, hashOf("old"), rotated)
	c.Put(c.Begin(), apikey.Live, hashOf("y"), key("key_y", "y"))
	consistent(t, c)
	c.Invalidate(apikey.Live, "key_x")
	mustMiss(t, c, apikey.Live, "new")
	mustMiss(t, c, apikey.Live, "old")
	mustHit(t, c, apikey.Live, "y", "key_y")
	consistent(t, c)
	c.Invalidate(apikey.Live, "key_unknown") // harmless
	consistent(t, c)
}

// A read that started before an invalidation of its key must not put the
// old row back; reads of other keys are unaffected, unless so many
// invalidations came in between that the ring forgot which.
func TestFillRacingAnInvalidationIsRefused(t *testing.T) {
	c, _ := newTest(t, Options{})
	before := c.Begin()
	c.Invalidate(apikey.Live, "key_x")
	c.Put(before, apikey.Live, hashOf("x"), key("key_x", "x"))
	mustMiss(t, c, apikey.Live, "x")
	c.Put(before, apikey.Live, hashOf("y"), key("key_y", "y"))
	mustHit(t, c, apikey.Live, "y", "key_y")
	c.Put(c.Begin(), apikey.Live, hashOf("x"), key("key_x", "x")) // a read after the change
	mustHit(t, c, apikey.Live, "x", "key_x")

	old := c.Begin()
	for i := 0; i < ringSize; i++ {
		c.Invalidate(apikey.Live, fmt.Sprintf("key_other%d", i))
	}
	c.Put(old, apikey.Live, hashOf("z"), key("key_z", "z"))
	mustHit(t, c, apikey.Live, "z", "key_z") // exactly ringSize: all remembered, none is key_z
	c.Invalidate(apikey.Live, "key_one_more")
	c.Put(old, apikey.Live, hashOf("w"), key("key_w", "w"))
	mustMiss(t, c, apikey.Live, "w") // more than the ring holds: refused to be safe
	consistent(t, c)
}

func TestFlushRefusesOlderFills(t *testing.T) {
	c, _ := newTest(t, Options{})
	c.Put(c.Begin(), apikey.Live, hashOf("a"), key("key_a", "a"))
	c.PutMissing(c.Begin(), apikey.Live, hashOf("forged"))
	before := c.Begin()
	c.Flush()
	mustMiss(t, c, apikey.Live, "a")
	mustMiss(t, c, apikey.Live, "forged")
	c.Put(before, apikey.Live, hashOf("b"), key("key_b", "b"))
	c.PutMissing(before, apikey.Live, hashOf("forged2"))
	if p, n := c.Len(); p != 0 || n != 0 {
		t.Fatalf("fills from before the flush were kept: %d %d", p, n)
	}
	consistent(t, c)
}

// Forged keys (valid checksum, no such key) cannot grow memory: the
// negative entries are bounded and never push out a positive one.
func TestNegativeEntriesAreBounded(t *testing.T) {
	c, _ := newTest(t, Options{NegativeSize: 100, Size: 10})
	c.Put(c.Begin(), apikey.Live, hashOf("real"), key("key_real", "real"))
	for i := 0; i < 5000; i++ {
		c.PutMissing(c.Begin(), apikey.Live, hashOf(fmt.Sprintf("forged%d", i)))
	}
	if p, n := c.Len(); p != 1 || n != 100 {
		t.Fatalf("%d positive, %d negative entries; want 1 and the bound 100", p, n)
	}
	mustHit(t, c, apikey.Live, "real", "key_real")
	mustMiss(t, c, apikey.Live, "forged0") // the oldest went first
	if k, hit := c.Get(apikey.Live, hashOf("forged4999")); !hit || k != nil {
		t.Fatal("the newest forged key is not remembered")
	}
}

func TestPositiveEntriesAreBoundedAndIndexFollows(t *testing.T) {
	c, _ := newTest(t, Options{Size: 10})
	for i := 0; i < 25; i++ {
		s := fmt.Sprintf("s%d", i)
		c.Put(c.Begin(), apikey.Live, hashOf(s), key(fmt.Sprintf("key_%d", i), s))
	}
	if p, _ := c.Len(); p != 10 {
		t.Fatalf("%d entries, want the bound 10", p)
	}
	consistent(t, c) // evictions took their index entries with them
	if len(c.byID) != 10 {
		t.Fatalf("%d key ids indexed, want 10", len(c.byID))
	}
}

// The cache holds its own copy, unchanged by the caller's key.
func TestSnapshotsAreCopies(t *testing.T) {
	c, _ := newTest(t, Options{})
	k := key("key_a", "a")
	exp := time.Unix(1_800_000_000, 0)
	k.ExpiresAt = ptr(exp)
	k.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	c.Put(c.Begin(), apikey.Live, hashOf("a"), k)
	k.Status, k.Permissions["payment"][0], k.Metadata["team"] = apikey.StatusInactive, "refund", "b"
	*k.ExpiresAt = exp.Add(time.Hour)
	k.AllowedNetworks[0] = netip.MustParsePrefix("0.0.0.0/0")
	got, _ := c.Get(apikey.Live, hashOf("a"))
	if got.Status != apikey.StatusActive || got.Permissions["payment"][0] != "read" || got.Metadata["team"] != "a" || !got.ExpiresAt.Equal(exp) ||
		len(got.AllowedNetworks) != 1 || got.AllowedNetworks[0].String() != "10.0.0.0/8" {
		t.Fatalf("the cached snapshot changed with the caller's key: %+v", got)
	}
	if got.Permissions["refund"] == nil {
		t.Fatal("an empty action list became nil (null in JSON)")
	}
}

// Every hit shares the cache's own snapshot (read only), and a reader that
// changes it — a field, a map, a slice, a time it points to — is caught by
// the next hit or removal wherever checkFrozen is on (race builds; forced
// on here), so the contract is enforced by the race runs of every test.
func TestSnapshotsAreFrozen(t *testing.T) {
	was := checkFrozen
	checkFrozen = true
	t.Cleanup(func() { checkFrozen = was })
	exp := time.Unix(1_800_000_000, 0)
	for _, tc := range []struct {
		name   string
		change func(k *apikey.Key)
		get    bool // caught by the next Get (else by the invalidation)
	}{
		{"field", func(k *apikey.Key) { k.Status = apikey.StatusInactive }, true},
		{"last use", func(k *apikey.Key) { now := time.Now(); k.LastUsedAt = &now }, true},
		{"permissions", func(k *apikey.Key) { k.Permissions["payment"][0] = "refund" }, true},
		{"metadata", func(k *apikey.Key) { k.Metadata["team"] = "b" }, false},
		{"expiry", func(k *apikey.Key) { *k.ExpiresAt = exp.Add(time.Hour) }, false},
		{"networks", func(k *apikey.Key) { k.AllowedNetworks[0] = netip.MustParsePrefix("0.0.0.0/0") }, true},
		{"secret hash", func(k *apikey.Key) { k.SecretHash[0]++ }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _ := newTest(t, Options{})
			k := key("key_a", "a")
			k.ExpiresAt = ptr(exp)
			k.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
			c.Put(c.Begin(), apikey.Live, hashOf("a"), k)
			got, _ := c.Get(apikey.Live, hashOf("a"))
			again, _ := c.Get(apikey.Live, hashOf("a")) // unchanged: no panic
			if got != again {
				t.Fatal("two hits got different snapshots: want the one shared snapshot")
			}
			tc.change(got)
			defer func() {
				if recover() == nil {
					t.Fatal("a reader changed the shared snapshot and nothing noticed")
				}
			}()
			if tc.get {
				c.Get(apikey.Live, hashOf("a"))
			} else {
				c.Invalidate(apikey.Live, "key_a")
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestSuspendBypassesAndResumeStartsEmpty(t *testing.T) {
	var results []Result
	c, _ := newTest(t, Options{Suspended: true, OnLookup: func(r Result) { results = append(results, r) }})
	c.Put(c.Begin(), apikey.Live, hashOf("a"), key("key_a", "a"))
	mustMiss(t, c, apikey.Live, "a")
	c.Resume()
	mustMiss(t, c, apikey.Live, "a") // nothing was cached while suspended
	c.Put(c.Begin(), apikey.Live, hashOf("a"), key("key_a", "a"))
	mustHit(t, c, apikey.Live, "a", "key_a")
	before := c.Begin()
	c.Suspend()
	c.Resume()
	mustMiss(t, c, apikey.Live, "a") // a suspension flushes
	c.Put(before, apikey.Live, hashOf("a"), key("key_a", "a"))
	mustMiss(t, c, apikey.Live, "a") // a read from before the suspension is not kept
	want := []Result{Bypass, Miss, Hit, Miss, Miss}
	if fmt.Sprint(results) != fmt.Sprint(want) {
		t.Fatalf("lookups observed %v, want %v", results, want)
	}
}

func TestConcurrentUse(t *testing.T) {
	c, _ := newTest(t, Options{Size: 64, NegativeSize: 64})
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				s := fmt.Sprintf("s%d", i%100)
				id := fmt.Sprintf("key_%d", i%100)
				t0 := c.Begin()
				if _, hit := c.Get(apikey.Live, hashOf(s)); !hit {
					c.Put(t0, apikey.Live, hashOf(s), key(id, s))
				}
				switch i % 50 {
				case 0:
					c.Invalidate(apikey.Live, id)
				case 1:
					c.PutMissing(t0, apikey.Live, hashOf("f"+s))
				}
				if g == 0 && i%500 == 0 {
					c.Flush()
				}
			}
		}()
	}
	wg.Wait()
	consistent(t, c)
}

func BenchmarkGetHit(b *testing.B) {
	c := New(Options{TTL: time.Minute})
	h := hashOf("a")
	c.Put(c.Begin(), apikey.Live, h, key("key_a", "a"))
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, hit := c.Get(apikey.Live, h); !hit {
				b.Fatal("miss")
			}
		}
	})
}

// Adopt caches the caller's key itself (no copy) and hands back what every
// hit shares; a refused fill hands back the caller's key, untouched.
func TestAdoptHandsBackTheSnapshot(t *testing.T) {
	c, _ := newTest(t, Options{})
	k := key("key_a", "a")
	got := c.Adopt(c.Begin(), apikey.Live, hashOf("a"), k)
	hit, _ := c.Get(apikey.Live, hashOf("a"))
	if got != hit || got.ID != "key_a" || got.Permissions["payment"][0] != "read" || got.Metadata["team"] != "a" {
		t.Fatalf("Adopt = %+v, the hit after it %+v: want the same snapshot", got, hit)
	}
	if k.Permissions == nil || k.Metadata == nil {
		t.Fatal("Adopt changed the caller's key")
	}

	before := c.Begin()
	c.Invalidate(apikey.Live, "key_b")
	kb := key("key_b", "b")
	if got := c.Adopt(before, apikey.Live, hashOf("b"), kb); got != kb {
		t.Fatalf("a refused fill handed back %p, not the caller's key %p", got, kb)
	}
	mustMiss(t, c, apikey.Live, "b")
	if c.Adopt(c.Begin(), apikey.Live, hashOf("b"), nil) != nil {
		t.Fatal("Adopt of no key handed back a key")
	}
	consistent(t, c)
}
