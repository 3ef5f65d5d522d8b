package credcache

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
)

// clone gives s an allocation of its own, as a string scanned from a row has.
func clone(s string) string { return strings.Clone(s) }

// storedKey is key i as a store read returns it (every string allocated on
// its own), in one of the shapes the memory tests compare:
//   - "small": no permissions, no metadata, never used;
//   - "typical": the bench's permissions and a team (shared by every key),
//     used, a name of its own;
//   - "own-metadata": as typical, plus metadata of its own (4 pairs);
//   - "large": the spec's largest metadata (20 pairs of 40 + 500 bytes) and
//     permissions (32 resources of 16 actions), all its own.
func storedKey(i int, shape string) *apikey.Key {
	now := time.Unix(1_700_000_000, 0).UTC()
	id, err := keys.NewID()
	if err != nil {
		panic(err)
	}
	k := &apikey.Key{
		ID: id, AccountID: fmt.Sprintf("acct_%08d", i/10), Name: fmt.Sprintf("payments backend %d", i),
		NameKey: fmt.Sprintf("payments backend %d", i), Type: clone(apikey.TypeSecret),
		SecretHash: keys.Hash(fmt.Sprint("secret", i)), KeyHint: fmt.Sprintf("sk_test_…%04d", i%10000),
		Status: clone(apikey.StatusActive), CreatedAt: now, UpdatedAt: now,
		CreatedBy: apikey.Actor{Kind: clone(apikey.ActorJWT), ID: fmt.Sprintf("user_%d", i), RequestID: fmt.Sprintf("req_%026d", i)},
	}
	if shape == "small" {
		return k
	}
	used, ip := now, fmt.Sprintf("203.0.113.%d", i%250)
	k.LastUsedAt, k.LastUsedIP = &used, &ip
	k.Permissions = map[string][]string{clone("payment"): {clone("read"), clone("create")}, clone("refund"): {clone("read")}}
	k.Metadata = map[string]string{clone("team"): clone("bench")}
	switch shape {
	case "own-metadata":
		for j := range 4 {
			k.Metadata[fmt.Sprintf("label%d", j)] = fmt.Sprintf("value %d of key %d", j, i)
		}
	case "large":
		k.Permissions, k.Metadata = map[string][]string{}, map[string]string{}
		for r := range 32 {
			actions := make([]string, 16)
			for a := range actions {
				actions[a] = fmt.Sprintf("action%02d_%026d", a, i)
			}
			k.Permissions[fmt.Sprintf("resource%02d_%d", r, i)] = actions
		}
		for j := range 20 {
			k.Metadata[fmt.Sprintf("%-40d", j*1_000_000+i)[:40]] = strings.Repeat(string(rune('a'+j)), 490) + fmt.Sprintf("%010d", i)
		}
	}
	return k
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// measure fills a cache with n keys of a shape, as the store would hand
// them over (the store's copy becomes garbage at once), and returns the
// heap it keeps alive per entry and its own estimate per entry.
func measure(n int, shape string) (heap, estimate float64) {
	// The memory of the cache as it runs: without the reference copies
	// that race builds keep to check that no reader changes a snapshot.
	was := checkFrozen
	checkFrozen = false
	defer func() { checkFrozen = was }()
	c := New(Options{TTL: time.Minute, Size: n, MaxBytes: 1 << 40})
	before := liveHeap()
	for i := range n {
		k := storedKey(i, shape)
		c.Put(c.Begin(), apikey.Sandbox, k.SecretHash, k)
	}
	after := liveHeap()
	s := c.Stats()
	runtime.KeepAlive(c)
	if s.Entries != n {
		panic(fmt.Sprintf("%d entries, want %d", s.Entries, n))
	}
	return float64(after-before) / float64(n), float64(s.Bytes) / float64(n)
}

// TestEntryBytesAreHonest holds the estimate the memory bound counts
// (Stats.Bytes) to the heap the runtime reports: never more than 10 % under
// what the entries really keep alive, nor 50 % over. Its log is the table
// of bytes per entry docs/security.md quotes:
//
//	go test ./internal/credcache -run TestEntryBytesAreHonest -v
func TestEntryBytesAreHonest(t *testing.T) {
	for _, tc := range []struct {
		shape string
		n     int
	}{{"small", 20_000}, {"typical", 20_000}, {"own-metadata", 20_000}, {"large", 500}} {
		heap, est := measure(tc.n, tc.shape)
		t.Logf("%-12s %6.0f B/entry on the heap, %6.0f estimated (%d entries)", tc.shape, heap, est, tc.n)
		if est < 0.9*heap || est > 1.5*heap {
			t.Errorf("%s: estimate %.0f B/entry, heap %.0f B/entry: outside [-10 %%, +50 %%]", tc.shape, est, heap)
		}
	}
}

// TestNegativeEntryBytesAreHonest does the same for the unknown hashes.
func TestNegativeEntryBytesAreHonest(t *testing.T) {
	const n = 10_000
	c := New(Options{TTL: time.Minute, NegativeSize: n})
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = hashOf(fmt.Sprint("forged", i))
	}
	before := liveHeap()
	for _, h := range hashes {
		c.PutMissing(c.Begin(), apikey.Live, h)
	}
	after := liveHeap()
	s := c.Stats()
	runtime.KeepAlive(c)
	heap, est := float64(after-before)/n, float64(s.Bytes)/n
	t.Logf("negative     %6.0f B/entry on the heap, %6.0f estimated (%d entries)", heap, est, n)
	if s.NegativeEntries != n || est < 0.9*heap || est > 1.5*heap {
		t.Errorf("%d entries; estimate %.0f B/entry, heap %.0f B/entry: outside [-10 %%, +50 %%]", s.NegativeEntries, est, heap)
	}
}

// TestIdleCacheTakesNoMemory: the bounds allocate nothing up front, so an
// idle replica's memory does not grow with them.
func TestIdleCacheTakesNoMemory(t *testing.T) {
	empty := func(size int, maxBytes int64) float64 {
		before := liveHeap()
		c := New(Options{TTL: time.Minute, Size: size, NegativeSize: size, MaxBytes: maxBytes})
		after := liveHeap()
		runtime.KeepAlive(c)
		return float64(after) - float64(before)
	}
	small, huge := empty(10, 1<<20), empty(10_000_000, 1<<40)
	t.Logf("an empty cache: %.0f bytes bounded at 10 entries, %.0f at 10 million", small, huge)
	if huge > small+1024 {
		t.Fatalf("an empty cache bounded at 10 million entries took %.0f bytes, %.0f at 10", huge, small)
	}
}
