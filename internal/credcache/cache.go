// Package credcache is an in-process cache of authenticated credentials: a
// key token's (mode, secret hash) → a snapshot of the stored key, plus the
// hashes recently found to belong to no key. It spares the store the one
// indexed read every request authenticated by an API key costs.
//
// A cache is only safe if it never lets a credential live longer than the
// store says, or only for a bounded time. This one holds that in three ways:
//
//   - It caches what the store says a hash IS (a snapshot), never the verdict.
//     Expiry, the previous secret's grace period, status and the deleted flag
//     are checked on the snapshot against the clock at every use
//     (auth.ResolveKey), so time alone never needs an invalidation and an
//     entry can never extend a key's life.
//   - Every change to a key drops its entries, current and previous secret
//     alike, through a secondary index key id → hashes (Invalidate): at once
//     on the replica that made the change, and on every other replica through
//     Redis Pub/Sub (Bus). Fills racing an invalidation are refused (Ticket).
//   - Every entry expires after the TTL whatever happens, the bound when an
//     invalidation is lost (publisher cut off from Redis); while this
//     replica's own subscription is down the cache is bypassed altogether
//     (Suspend), and it is flushed when the subscription is back.
package credcache

import (
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// Defaults for Options.
const (
	// DefaultSize bounds the positive entries: a snapshot is about 1 KiB,
	// so ~10 MiB at most, and 10 000 keys in active use per replica.
	DefaultSize = 10_000
	// DefaultNegativeSize bounds the unknown hashes remembered. Forging keys
	// that pass the checksum costs nothing (CRC32 is no secret), so without
	// a bound a flood of forged keys would grow memory without end; with it
	// they only evict each other (never a positive entry: separate LRUs).
	DefaultNegativeSize = 10_000
	// ringSize is how many recent invalidations a fill is checked against.
	// A fill whose read started further back than that is refused.
	ringSize = 256
)

// hashLen is the length of a secret hash (SHA-256).
const hashLen = 32

// Result is what a lookup found, for metrics.
type Result int

const (
	Hit         Result = iota // a snapshot of the key
	NegativeHit               // a hash recently found to belong to no key
	Miss                      // nothing cached: the caller reads the store
	Bypass                    // the cache is suspended (its invalidations are not arriving)
)

func (r Result) String() string {
	switch r {
	case Hit:
		return "hit"
	case NegativeHit:
		return "negative_hit"
	case Miss:
		return "miss"
	}
	return "bypass"
}

// Options configure a cache.
type Options struct {
	// TTL is the longest an entry lives, whatever happens (> 0).
	TTL time.Duration
	// Size and NegativeSize bound the entries (defaults DefaultSize, DefaultNegativeSize).
	Size, NegativeSize int
	// Now is the clock of the TTL (default time.Now, whose monotonic reading
	// makes the TTL immune to wall-clock jumps). It is not the clock keys
	// expire by: that is the caller's, checked at every use.
	Now func() time.Time
	// Suspended starts the cache bypassed, until Resume: a replica whose
	// invalidations come through a subscription caches nothing before the
	// subscription is up.
	Suspended bool
	// OnLookup observes every Get (metrics); it must be cheap.
	OnLookup func(Result)
}

type entryKey struct {
	mode apikey.Mode
	hash [hashLen]byte
}

type idKey struct {
	mode apikey.Mode
	id   string
}

type entry struct {
	key     *apikey.Key // a deep copy, never handed out as is
	expires time.Time
}

type invalidation struct {
	seq uint64
	id  idKey
}

// Cache is safe for concurrent use. A nil *Cache caches nothing.
type Cache struct {
	ttl      time.Duration
	now      func() time.Time
	onLookup func(Result)

	mu     sync.Mutex
	active bool
	pos    *simplelru.LRU[entryKey, entry]
	neg    *simplelru.LRU[entryKey, time.Time] // value: expiry
	byID   map[idKey][][hashLen]byte           // the hashes cached for each key id
	seq    uint64                              // counts invalidations and flushes
	flush  uint64                              // seq of the last flush (or suspension)
	recent [ringSize]invalidation              // the last invalidations, a ring
	next   int                                 // where the next invalidation goes in recent
	filled int                                 // how many of recent are in use
}

// New builds a cache; TTL <= 0 means no cache (nil).
//
// It uses golang-lru's simplelru (not thread-safe, no goroutine) under one
// mutex of its own, rather than the library's expirable LRU: that one starts
// a cleanup goroutine per cache that can never be stopped, and a secondary
// index (key id → hashes) has to change under the same lock as the LRU
// anyway. Expired entries are dropped when met and pushed out by the bound.
func New(o Options) *Cache {
	if o.TTL <= 0 {
		return nil
	}
	if o.Size <= 0 {
		o.Size = DefaultSize
	}
	if o.NegativeSize <= 0 {
		o.NegativeSize = DefaultNegativeSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{ttl: o.TTL, now: o.Now, onLookup: o.OnLookup, active: !o.Suspended, byID: map[idKey][][hashLen]byte{}}
	// NewLRU fails only for a size <= 0, excluded above.
	c.pos, _ = simplelru.NewLRU(o.Size, c.unindex)
	c.neg, _ = simplelru.NewLRU[entryKey, time.Time](o.NegativeSize, nil)
	return c
}

func (c *Cache) observe(r Result) {
	if c.onLookup != nil {
		c.onLookup(r)
	}
}

// Get looks a hash up: (snapshot, true) for a known key, (nil, true) for a
// hash recently found to belong to no key, (nil, false) when the store must
// be read. The snapshot is a copy of the cached one, but its maps, slices
// and the times it points to are shared with the cache: read only.
func (c *Cache) Get(mode apikey.Mode, hash []byte) (*apikey.Key, bool) {
	if c == nil || len(hash) != hashLen {
		return nil, false
	}
	k := entryKey{mode, [hashLen]byte(hash)}
	c.mu.Lock()
	if !c.active {
		c.mu.Unlock()
		c.observe(Bypass)
		return nil, false
	}
	now := c.now()
	if e, ok := c.pos.Get(k); ok {
		if now.Before(e.expires) {
			snapshot := *e.key // callers may set fields (e.g. last use) on their copy
			c.mu.Unlock()
			c.observe(Hit)
			return &snapshot, true
		}
		c.pos.Remove(k)
	}
	if exp, ok := c.neg.Get(k); ok {
		if now.Before(exp) {
			c.mu.Unlock()
			c.observe(NegativeHit)
			return nil, true
		}
		c.neg.Remove(k)
	}
	c.mu.Unlock()
	c.observe(Miss)
	return nil, false
}

// Ticket is taken before reading the store, and given back to Put: a fill
// whose read may predate an invalidation of the same key is refused, so a
// slow request can never put back a snapshot that an invalidation (local or
// from another replica) has just removed.
type Ticket struct{ seq uint64 }

// Begin returns the ticket for a store read about to start.
func (c *Cache) Begin() Ticket {
	if c == nil {
		return Ticket{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return Ticket{c.seq}
}

// Put caches a snapshot of k (deep-copied: the caller keeps its own), read
// from the store after t was taken, under mode and hash (its current or
// previous secret's hash).
func (c *Cache) Put(t Ticket, mode apikey.Mode, hash []byte, k *apikey.Key) {
	if c == nil || len(hash) != hashLen || k == nil {
		return
	}
	id := idKey{mode, k.ID}
	snapshot := deepCopy(k)
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh(t, &id) {
		return
	}
	h := [hashLen]byte(hash)
	ek := entryKey{mode, h}
	if !c.pos.Contains(ek) {
		c.byID[id] = append(c.byID[id], h)
	}
	c.pos.Add(ek, entry{key: snapshot, expires: c.now().Add(c.ttl)})
}

// PutMissing remembers that no key holds hash.
//
// No invalidation ever drops these entries, and none needs to: a hash starts
// to belong to a key only when the key gets a new secret (create, regenerate,
// bootstrap), and that secret is 32 fresh random base62 characters (~190
// bits) that nobody could have presented before the response that reveals it
// (sent after the commit, so every replica's read sees the key by then). A
// negative entry for it would take guessing the secret. What a negative entry
// can hide is only a hash that was never issued, or one that stopped working.
func (c *Cache) PutMissing(t Ticket, mode apikey.Mode, hash []byte) {
	if c == nil || len(hash) != hashLen {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh(t, nil) {
		return
	}
	c.neg.Add(entryKey{mode, [hashLen]byte(hash)}, c.now().Add(c.ttl))
}

// fresh reports whether a read started at t may still be cached: the cache
// is active, nothing was flushed since, and (for a key) the key was not
// invalidated since. Older than the ring remembers: refused. Holds c.mu.
func (c *Cache) fresh(t Ticket, id *idKey) bool {
	if !c.active || c.flush > t.seq {
		return false
	}
	if id == nil || c.seq == t.seq {
		return true
	}
	for i := 1; i <= c.filled; i++ {
		inv := c.recent[(c.next-i+ringSize)%ringSize]
		if inv.seq <= t.seq {
			return true
		}
		if inv.id == *id {
			return false
		}
	}
	// Every invalidation remembered is newer than the read. Since no flush
	// came after it, the sequence numbers after the read are all
	// invalidations: none was forgotten if the oldest remembered is the
	// first one after the read (or the ring never filled up).
	return c.filled < ringSize || c.recent[c.next].seq == t.seq+1
}

// Invalidate drops every entry of a key (its current and previous secret)
// and refuses fills of it from reads that started before.
func (c *Cache) Invalidate(mode apikey.Mode, keyID string) {
	if c == nil {
		return
	}
	id := idKey{mode, keyID}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	c.recent[c.next] = invalidation{seq: c.seq, id: id}
	c.next = (c.next + 1) % ringSize
	if c.filled < ringSize {
		c.filled++
	}
	hashes := c.byID[id]
	delete(c.byID, id)
	for _, h := range hashes {
		c.pos.Remove(entryKey{mode, h}) // unindex finds nothing left to do
	}
}

// Flush drops everything and refuses fills from reads that started before.
func (c *Cache) Flush() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
}

func (c *Cache) flushLocked() {
	c.seq++
	c.flush = c.seq
	c.byID = map[idKey][][hashLen]byte{}
	c.pos.Purge()
	c.neg.Purge()
}

// Suspend flushes the cache and bypasses it until Resume: while the
// invalidations of other replicas cannot arrive, every lookup reads the store.
func (c *Cache) Suspend() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.active = false
	c.flushLocked()
}

// Resume flushes the cache (invalidations may have been missed while it was
// suspended) and uses it again.
func (c *Cache) Resume() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.flushLocked()
	c.active = true
}

// Active reports whether lookups use the cache (not suspended).
func (c *Cache) Active() bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.active
}

// Len returns how many positive and negative entries are held (expired ones
// not yet dropped included).
func (c *Cache) Len() (positive, negative int) {
	if c == nil {
		return 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.pos.Len(), c.neg.Len()
}

// unindex keeps byID in step when the LRU drops an entry (evicted, expired,
// invalidated or flushed). Called with c.mu held, from inside the LRU.
func (c *Cache) unindex(k entryKey, e entry) {
	id := idKey{k.mode, e.key.ID}
	hashes := c.byID[id]
	for i, h := range hashes {
		if h == k.hash {
			hashes = append(hashes[:i], hashes[i+1:]...)
			break
		}
	}
	if len(hashes) == 0 {
		delete(c.byID, id)
	} else {
		c.byID[id] = hashes
	}
}

// deepCopy copies k and everything it points to, so that nothing the store
// or a caller holds aliases the cached snapshot.
func deepCopy(k *apikey.Key) *apikey.Key {
	out := *k
	out.SecretHash = append([]byte(nil), k.SecretHash...)
	if k.PrevSecretHash != nil {
		out.PrevSecretHash = append([]byte(nil), k.PrevSecretHash...)
	}
	out.PrevSecretExpiresAt = copyTime(k.PrevSecretExpiresAt)
	out.ExpiresAt = copyTime(k.ExpiresAt)
	out.LastUsedAt = copyTime(k.LastUsedAt)
	if k.LastUsedIP != nil {
		ip := *k.LastUsedIP
		out.LastUsedIP = &ip
	}
	if k.Permissions != nil {
		out.Permissions = make(map[string][]string, len(k.Permissions))
		for r, actions := range k.Permissions {
			out.Permissions[r] = slices.Clone(actions) // an empty list stays empty, not nil (null in JSON)
		}
	}
	out.Metadata = maps.Clone(k.Metadata)
	return &out
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}
