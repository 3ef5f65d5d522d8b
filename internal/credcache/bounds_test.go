package credcache

import (
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
)

// TestMemoryBoundEvictsTheOldest: past MaxBytes the least recently used
// entries go, as past Size, and are counted.
func TestMemoryBoundEvictsTheOldest(t *testing.T) {
	probe := New(Options{TTL: time.Minute})
	probe.Put(probe.Begin(), apikey.Live, hashOf("s0"), key("key_0", "s0"))
	first := probe.Stats().Bytes // an entry and the maps it interned
	probe.Put(probe.Begin(), apikey.Live, hashOf("s1"), key("key_1", "s1"))
	per := probe.Stats().Bytes - first // an entry whose maps are interned already
	limit := first + 9*per
	c, _ := newTest(t, Options{Size: 1000, MaxBytes: limit})
	for i := range 50 {
		s := fmt.Sprintf("s%d", i)
		c.Put(c.Begin(), apikey.Live, hashOf(s), key(fmt.Sprintf("key_%d", i), s))
	}
	st := c.Stats()
	if st.Bytes > limit || st.Entries != 10 {
		t.Fatalf("%+v: want at most %d bytes, 10 entries", st, limit)
	}
	if st.Evictions != int64(50-st.Entries) {
		t.Fatalf("%d evictions counted, %d entries of 50 left", st.Evictions, st.Entries)
	}
	mustMiss(t, c, apikey.Live, "s0")
	mustHit(t, c, apikey.Live, "s49", "key_49")
	consistent(t, c)
}

// TestBytesFollowEveryRemoval: whatever drops an entry (replacement,
// invalidation, expiry, eviction, flush) gives its bytes back, and the
// interned maps go with their last entry.
func TestBytesFollowEveryRemoval(t *testing.T) {
	c, clk := newTest(t, Options{Size: 3})
	empty := func(what string) {
		t.Helper()
		if st := c.Stats(); st.Bytes != 0 || st.Entries != 0 || len(c.perms) != 0 || len(c.meta) != 0 {
			t.Fatalf("after %s: %+v, %d permission maps, %d metadata maps; want nothing", what, st, len(c.perms), len(c.meta))
		}
	}
	k := key("key_a", "a")
	c.Put(c.Begin(), apikey.Live, hashOf("a"), k)
	c.Put(c.Begin(), apikey.Live, hashOf("a"), k) // replaced: counted once
	one := c.Stats().Bytes
	c.Invalidate(apikey.Live, "key_a")
	empty("an invalidation")

	c.Put(c.Begin(), apikey.Live, hashOf("a"), k)
	if c.Stats().Bytes != one {
		t.Fatalf("%d bytes for the same entry, %d before", c.Stats().Bytes, one)
	}
	clk.Advance(time.Minute)
	mustMiss(t, c, apikey.Live, "a") // expired: dropped when met
	empty("an expiry")

	for i := range 10 {
		s := fmt.Sprintf("s%d", i)
		k := key(fmt.Sprintf("key_%d", i), s)
		k.Metadata = map[string]string{"n": s} // a map of its own
		c.Put(c.Begin(), apikey.Live, hashOf(s), k)
	}
	if st := c.Stats(); st.Entries != 3 || len(c.meta) != 3 || len(c.perms) != 1 || st.Evictions != 7 {
		t.Fatalf("%+v, %d metadata maps, %d permission maps: want 3 entries, 3 and 1 maps, 7 evictions", st, len(c.meta), len(c.perms))
	}
	for i := 7; i < 10; i++ {
		c.Invalidate(apikey.Live, fmt.Sprintf("key_%d", i))
	}
	empty("evictions and invalidations")

	c.Put(c.Begin(), apikey.Live, hashOf("a"), k)
	c.PutMissing(c.Begin(), apikey.Live, hashOf("forged"))
	c.Flush()
	empty("a flush")
	if st := c.Stats(); st.NegativeEntries != 0 {
		t.Fatalf("%+v after a flush", st)
	}
}

// TestEntriesShareTheirMaps: keys with equal permissions or metadata share
// one copy, and a key's maps are still its own content.
func TestEntriesShareTheirMaps(t *testing.T) {
	c, _ := newTest(t, Options{})
	a, b, d := key("key_a", "a"), key("key_b", "b"), key("key_d", "d")
	d.Permissions = map[string][]string{"payment": {"read"}, "refund": nil} // nil, not [], is another map
	d.Metadata = nil
	for _, k := range []*apikey.Key{a, b, d} {
		c.Put(c.Begin(), apikey.Live, k.SecretHash, k)
	}
	ga, _ := c.Get(apikey.Live, a.SecretHash)
	gb, _ := c.Get(apikey.Live, b.SecretHash)
	gd, _ := c.Get(apikey.Live, d.SecretHash)
	if fmt.Sprintf("%p", ga.Permissions) != fmt.Sprintf("%p", gb.Permissions) || len(c.perms) != 2 || len(c.meta) != 1 {
		t.Fatalf("equal maps not shared: %d permission maps, %d metadata maps", len(c.perms), len(c.meta))
	}
	if gd.Permissions["refund"] != nil || gb.Permissions["refund"] == nil || gd.Metadata != nil {
		t.Fatalf("a key got another's maps: %v %v", gd.Permissions, gd.Metadata)
	}
}

// BenchmarkMissThenPut is what the cache adds to a lookup the store
// answers: a Get that misses, a ticket, and the Put of the key read (a
// snapshot, its maps found interned), in a full cache (each Put evicts).
func BenchmarkMissThenPut(b *testing.B) {
	benchMissThen(b, func(c *Cache, t Ticket, k *apikey.Key) { c.Put(t, apikey.Live, k.SecretHash, k) })
}

// BenchmarkMissThenAdopt is BenchmarkMissThenPut as auth's lookup does it
// since a miss's store read is cached as it is (Adopt), not copied.
func BenchmarkMissThenAdopt(b *testing.B) {
	benchMissThen(b, func(c *Cache, t Ticket, k *apikey.Key) { c.Adopt(t, apikey.Live, k.SecretHash, k) })
}

// benchMissThen runs a Get that misses, a ticket and fill, in a full
// cache of 10 000 keys (each fill evicts), cycling through 20 000 keys.
func benchMissThen(b *testing.B, fill func(*Cache, Ticket, *apikey.Key)) {
	c := New(Options{TTL: time.Minute, Size: 10_000})
	ks := make([]*apikey.Key, 20_000)
	for i := range ks {
		ks[i] = storedKey(i, "typical")
	}
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	i := 0
	for b.Loop() {
		k := ks[i%len(ks)]
		i++
		if _, hit := c.Get(apikey.Live, k.SecretHash); hit {
			b.Fatal("hit")
		}
		fill(c, c.Begin(), k)
	}
}
