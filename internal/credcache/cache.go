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
	"reflect"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// Defaults for Options.
const (
	// DefaultSize bounds the positive entries (HSRCPAY_CREDENTIAL_CACHE_KEYS):
	// the keys a replica can use within one TTL. An entry lives at most the
	// TTL, so a cache larger than (lookups of distinct keys per second) × TTL
	// never fills: 100 000 is 20 000 distinct keys a second at the 5 s
	// default. Nothing is allocated up front; memory follows the entries
	// actually held, and MaxBytes bounds it whatever the keys hold.
	DefaultSize = 100_000
	// DefaultMaxBytes bounds the positive entries' memory
	// (HSRCPAY_CREDENTIAL_CACHE_MEMORY), as entryBytes estimates it
	// (TestEntryBytesAreHonest holds the estimate to the heap): a typical
	// key (permissions and metadata it shares with other keys) takes
	// ~1 KiB, so 100 000 take ~95 MiB; keys with metadata of their own
	// (~1.6 KiB with 4 pairs, ~50 KiB at the spec's largest) reach this
	// bound before DefaultSize.
	DefaultMaxBytes = 128 << 20
	// DefaultNegativeSize bounds the unknown hashes remembered. Forging keys
	// that pass the checksum costs nothing (CRC32 is no secret), so without
	// a bound a flood of forged keys would grow memory without end; with it
	// they only evict each other (never a positive entry: separate LRUs).
	// They take ~180 B each (negativeEntryBytes estimates 242), under
	// 2.5 MiB in all.
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
	// MaxBytes bounds the estimated memory of the positive entries
	// (default DefaultMaxBytes): past it the least recently used are
	// evicted, as past Size. The negative entries are bounded by
	// NegativeSize alone (negativeEntryBytes each), so that a flood of
	// forged keys never evicts a real key's entry.
	MaxBytes int64
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
	// key is the cache's own copy (its maps interned), handed out as is to
	// every Get: frozen, read only (see Get).
	key     *apikey.Key
	expires time.Time
	// frozen is a deep copy of key as Put made it, kept only when
	// checkFrozen is on (race builds) to catch a reader that changed it.
	frozen *apikey.Key
	// perms and meta are the interned maps key.Permissions and key.Metadata
	// point to (nil for a nil map), released when the entry goes.
	perms *shared[[]string]
	meta  *shared[string]
	size  int64 // entryBytes(key): its own memory, the interned maps excluded
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

	size, negSize int
	maxBytes      int64

	mu     sync.Mutex
	active bool
	pos    *simplelru.LRU[entryKey, entry]
	neg    *simplelru.LRU[entryKey, time.Time] // value: expiry
	byID   map[idKey][][hashLen]byte           // the hashes cached for each key id
	perms  interner[[]string]                  // the permission maps the entries share
	meta   interner[string]                    // the metadata maps the entries share
	bytes  int64                               // estimated memory of the positive entries and the maps they share
	stats  Stats                               // evictions (the sizes are read when asked)
	// seq counts invalidations and flushes: changed under mu, read by
	// Begin without it (see Begin).
	seq    atomic.Uint64
	flush  uint64                 // seq of the last flush (or suspension)
	recent [ringSize]invalidation // the last invalidations, a ring
	next   int                    // where the next invalidation goes in recent
	filled int                    // how many of recent are in use
}

// New builds a cache; TTL <= 0 means no cache (nil).
//
// It uses golang-lru's simplelru (not thread-safe, no goroutine) under one
// mutex of its own, rather than the library's expirable LRU: that one starts
// a cleanup goroutine per cache that can never be stopped, and a secondary
// index (key id → hashes) has to change under the same lock as the LRU
// anyway. Expired entries are dropped when met and pushed out by the bounds.
// Nothing is sized up front: an empty cache takes ~12 KiB (mostly its ring
// of recent invalidations) whatever its bounds (TestIdleCacheTakesNoMemory).
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
	if o.MaxBytes <= 0 {
		o.MaxBytes = DefaultMaxBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Cache{ttl: o.TTL, now: o.Now, onLookup: o.OnLookup, active: !o.Suspended,
		size: o.Size, negSize: o.NegativeSize, maxBytes: o.MaxBytes}
	c.reset()
	return c
}

// reset starts every structure afresh (new, not emptied: Go maps keep
// their buckets when emptied, so an emptied cache would keep the memory of
// its fullest moment). Holds c.mu, or c is not shared yet.
func (c *Cache) reset() {
	// NewLRU fails only for a size <= 0, excluded in New.
	c.pos, _ = simplelru.NewLRU(c.size, c.unindex)
	c.neg, _ = simplelru.NewLRU[entryKey, time.Time](c.negSize, nil)
	c.byID = map[idKey][][hashLen]byte{}
	c.perms = interner[[]string]{}
	c.meta = interner[string]{}
	c.bytes = 0
}

func (c *Cache) observe(r Result) {
	if c.onLookup != nil {
		c.onLookup(r)
	}
}

// Get looks a hash up: (snapshot, true) for a known key, (nil, true) for a
// hash recently found to belong to no key, (nil, false) when the store must
// be read.
//
// The snapshot is the cache's own, shared by every request that hits it
// (across goroutines): it is frozen, and nothing may change it or anything
// it points to. It used to be a shallow copy per hit (its maps, slices and
// times shared already), which no reader set a field of, and which cost an
// allocation of a whole key (~11% of a cached verify's bytes) on every
// request. A reader that needs to change a key copies it first. Race
// builds (go test -race) enforce this: every hit and every removal
// compares the entry with a deep copy taken at Put, and panics on a
// difference (checkFrozen, TestSnapshotsAreFrozen).
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
			if checkFrozen {
				mustBeUnchanged(e)
			}
			c.mu.Unlock()
			c.observe(Hit)
			return e.key, true
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

// Begin returns the ticket for a store read about to start. It takes no
// lock (one lock round less per miss on the mutex every lookup shares): seq
// is atomic, and an invalidation counts itself (under mu) only after its
// change committed, so a read that starts after Begin saw the count it
// made reads the change, and one whose Begin saw the count before it is
// checked against that invalidation by Put, under mu, as before.
func (c *Cache) Begin() Ticket {
	if c == nil {
		return Ticket{}
	}
	return Ticket{c.seq.Load()}
}

// Put caches a snapshot of k (deep-copied: the caller keeps its own), read
// from the store after t was taken, under mode and hash (its current or
// previous secret's hash).
func (c *Cache) Put(t Ticket, mode apikey.Mode, hash []byte, k *apikey.Key) {
	if c == nil || len(hash) != hashLen || k == nil {
		return
	}
	c.put(t, mode, hash, k, copyScalars(k))
}

// Adopt is Put of a key nobody else holds (the store's fresh read, as
// auth's lookup has it after a miss): instead of a copy, k itself becomes
// the snapshot, its maps replaced by the interned ones, and Adopt returns
// what the caller uses from then on: the snapshot (frozen, read only, as
// every Get hands out) or, when the fill was refused, k. A miss so costs
// no copy of the key (~9 allocations). The caller must drop every other
// reference to k and to what it points to.
func (c *Cache) Adopt(t Ticket, mode apikey.Mode, hash []byte, k *apikey.Key) *apikey.Key {
	if c == nil || len(hash) != hashLen || k == nil {
		return k
	}
	snapshot := *k // not k: a refused fill leaves the caller's key as it was
	snapshot.Type, snapshot.Status, snapshot.CreatedBy.Kind = canonical(k.Type), canonical(k.Status), canonical(k.CreatedBy.Kind)
	snapshot.Permissions, snapshot.Metadata = nil, nil
	if c.put(t, mode, hash, k, &snapshot) {
		return &snapshot
	}
	return k
}

// put caches snapshot (a copy of k but for its maps, which put sets to the
// interned copies of k's) and reports whether it did.
func (c *Cache) put(t Ticket, mode apikey.Mode, hash []byte, k, snapshot *apikey.Key) bool {
	id := idKey{mode, k.ID}
	size := entryBytes(snapshot)
	ph, mh := hashPerms(k.Permissions), hashMeta(k.Metadata) // outside the lock
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.fresh(t, &id) {
		return false
	}
	h := [hashLen]byte(hash)
	ek := entryKey{mode, h}
	if old, ok := c.pos.Peek(ek); ok {
		c.release(old) // Add replaces it without telling unindex
	} else {
		c.byID[id] = append(c.byID[id], h)
	}
	e := entry{key: snapshot, expires: c.now().Add(c.ttl), size: size}
	if k.Permissions != nil {
		e.perms = c.perms.get(ph, k.Permissions, equalPerms, copyPerms, permsBytes, &c.bytes)
		snapshot.Permissions = e.perms.m
	}
	if k.Metadata != nil {
		e.meta = c.meta.get(mh, k.Metadata, equalMeta, copyMeta, metaBytes, &c.bytes)
		snapshot.Metadata = e.meta.m
	}
	if checkFrozen {
		e.frozen = deepCopy(snapshot)
	}
	c.bytes += size
	if c.pos.Add(ek, e) {
		c.stats.Evictions++
	}
	for c.bytes > c.maxBytes && c.pos.Len() > 1 {
		c.pos.RemoveOldest()
		c.stats.Evictions++
	}
	return true
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
	if c.neg.Add(entryKey{mode, [hashLen]byte(hash)}, c.now().Add(c.ttl)) {
		c.stats.NegativeEvictions++
	}
}

// fresh reports whether a read started at t may still be cached: the cache
// is active, nothing was flushed since, and (for a key) the key was not
// invalidated since. Older than the ring remembers: refused. Holds c.mu.
func (c *Cache) fresh(t Ticket, id *idKey) bool {
	if !c.active || c.flush > t.seq {
		return false
	}
	if id == nil || c.seq.Load() == t.seq {
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
	seq := c.seq.Add(1)
	c.recent[c.next] = invalidation{seq: seq, id: id}
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
	c.flush = c.seq.Add(1)
	c.reset()
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

// Stats is what a cache holds and has evicted, for metrics.
type Stats struct {
	Entries, NegativeEntries int // held now, expired ones not yet dropped included
	// Bytes estimates the memory the entries take: the positive ones (the
	// bound MaxBytes applies to) and the negative ones.
	Bytes int64
	// Evictions and NegativeEvictions count the entries pushed out by the
	// bounds (Size and MaxBytes; NegativeSize) since the start: entries
	// dropped because they expired, were invalidated or flushed are not.
	Evictions, NegativeEvictions int64
	// The bounds: Options.Size, NegativeSize and MaxBytes.
	MaxEntries, MaxNegativeEntries int
	MaxBytes                       int64
}

// Stats returns what the cache holds now and its evictions so far.
func (c *Cache) Stats() Stats {
	if c == nil {
		return Stats{}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Entries, s.NegativeEntries = c.pos.Len(), c.neg.Len()
	s.Bytes = c.bytes + int64(s.NegativeEntries)*negativeEntryBytes
	s.MaxEntries, s.MaxNegativeEntries, s.MaxBytes = c.size, c.negSize, c.maxBytes
	return s
}

// release gives back what an entry holds: its bytes and its share of the
// interned maps. Holds c.mu.
func (c *Cache) release(e entry) {
	if checkFrozen {
		mustBeUnchanged(e)
	}
	c.bytes -= e.size
	c.perms.release(e.perms, &c.bytes)
	c.meta.release(e.meta, &c.bytes)
}

// unindex keeps byID and the memory estimate in step when the LRU drops an
// entry (evicted, expired or invalidated; a flush starts afresh instead).
// Called with c.mu held, from inside the LRU.
func (c *Cache) unindex(k entryKey, e entry) {
	c.release(e)
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

// copyScalars copies k and everything it points to but its two maps,
// which Put replaces with interned copies; so nothing the store or a caller
// holds aliases the cached snapshot.
func copyScalars(k *apikey.Key) *apikey.Key {
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
	out.Permissions, out.Metadata = nil, nil
	out.Type, out.Status, out.CreatedBy.Kind = canonical(k.Type), canonical(k.Status), canonical(k.CreatedBy.Kind)
	out.AllowedNetworks = slices.Clone(k.AllowedNetworks) // enforced on every use of the key
	out.RateLimit = k.RateLimit.Clone()
	// Only whether the key has credits is used from a cached copy (verify
	// then spends in the store, which answers what is left): a copy of the
	// count, never the count.
	out.Credits = k.Credits.Clone()
	return &out
}

func copyTime(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := *t
	return &v
}

// deepCopy copies a cached key and everything it points to, its maps too
// (checkFrozen's reference copy).
func deepCopy(k *apikey.Key) *apikey.Key {
	out := copyScalars(k)
	if k.Permissions != nil {
		out.Permissions = copyPerms(k.Permissions)
	}
	if k.Metadata != nil {
		out.Metadata = copyMeta(k.Metadata)
	}
	return out
}

// mustBeUnchanged panics when an entry's key differs from the copy Put
// took of it: a reader changed a snapshot every request shares.
func mustBeUnchanged(e entry) {
	if e.frozen != nil && !reflect.DeepEqual(e.key, e.frozen) {
		panic("credcache: a cached key snapshot was changed by a reader; snapshots are shared and read only (copy the key to change it)")
	}
}
