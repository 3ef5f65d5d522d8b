package sqlite

import (
	"maps"
	"slices"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// keyCache is the writer's copy of the keys its units read (Tx.Key). Every
// create and regenerate re-reads its caller's key inside its unit
// (policy.Recheck: check-and-act on the state that commits); under load
// that is the same few keys, read back and decoded (JSON permissions and
// metadata, timestamps) thousands of times a second on the one goroutine
// that all writes wait for.
//
// The cache answers with exactly what the statement would: it holds a key
// only as committed, and only while nothing can have changed it since.
//   - The writer is the store's only writer, and every statement that
//     changes a key runs in a unit through tx (InsertKey, UpdateKey,
//     RecordUsage, DeleteAccount): each one drops the key from the cache and
//     marks it written. A written key is not cached again until its batch
//     ends, so that a unit's uncommitted change, which a ROLLBACK TO or a
//     failed batch may undo, is never cached; after the batch every cached
//     key is as committed (or, if the batch failed, as it was before it).
//   - Any other connection that writes the file (a tool on Store.DB, another
//     process) changes PRAGMA data_version, which the writer reads after each
//     BEGIN, holding the write lock: if it moved, the cache is emptied
//     before any unit of the batch runs.
//
// A key the batch in progress rotated (UpdateKey's narrow statement,
// rotateKeySQL) is known all the same: the row as the unit read it with the
// columns the statement set, as the statement stored them (rotatedRow). Every
// regenerate of a hot key rotates the key the one before it in the batch
// rotated, and read it back by statement, decoded, each time (~10% of the
// server's CPU under load.sh's regenerate row). Such a key follows the
// transaction as the account cache does (acctcache.go): the unit's own
// (unitRows) become the batch's (batchRows) when its savepoint is released,
// and are dropped when it rolls back; the batch's become the cache's when it
// commits, and are dropped when it fails. Any other write of the key drops
// it from all three (wrote).
//
// Callers get a deep copy (they may change what they read, as UpdateKey's
// callers do). Only the writer's goroutine uses it.
type keyCache struct {
	keys map[string]*apikey.Key
	// unitRows and batchRows: keys rotated by the unit in progress, and by
	// the batch's units whose savepoints were released, as their rows
	// now hold them (uncommitted; immutable).
	unitRows, batchRows map[string]*apikey.Key
	// accts is the writer's account cache (acctcache.go), emptied with keys
	// when another connection commits.
	accts   map[string]acctState
	written map[string]struct{} // by the batch in progress
	// allWritten: a unit of the batch changed keys by account
	// (DeleteAccount): no key is cached until the batch ends.
	allWritten  bool
	dataVersion int64
	versionRead bool
}

// keyCacheSize bounds the cache: the callers of the writes in flight (an
// operator's key or two per account) and the keys they rotate. Past it the
// cache starts over.
const keyCacheSize = 1024

func newKeyCache() keyCache {
	return keyCache{keys: map[string]*apikey.Key{}, written: map[string]struct{}{}, accts: map[string]acctState{},
		unitRows: map[string]*apikey.Key{}, batchRows: map[string]*apikey.Key{}}
}

// peek returns key id as the unit in progress would read it, itself, which
// nobody may change: committed, or as this batch rotated it.
func (c *keyCache) peek(id string) (*apikey.Key, bool) {
	if k, ok := c.keys[id]; ok {
		return k, true
	}
	if k, ok := c.unitRows[id]; ok {
		return k, true
	}
	k, ok := c.batchRows[id]
	return k, ok
}

// rotated records row as key id's row now: the unit in progress wrote it
// (rotateKeySQL) just now.
func (c *keyCache) rotated(row *apikey.Key) {
	if !c.allWritten {
		c.unitRows[row.ID] = row
	}
}

// unitEnded: the unit's rotations stand (released) or are undone.
func (c *keyCache) unitEnded(released bool) {
	if released {
		for id, k := range c.unitRows {
			c.batchRows[id] = k
		}
	}
	clear(c.unitRows)
}

// put keeps a copy of k, read by a statement just now, unless the batch in
// progress wrote it, and returns the copy (nil if not kept), which nobody
// may change.
func (c *keyCache) put(k *apikey.Key) *apikey.Key {
	if c.allWritten {
		return nil
	}
	if _, ok := c.written[k.ID]; ok {
		return nil
	}
	if len(c.keys) >= keyCacheSize {
		clear(c.keys)
	}
	kept := cloneKey(k)
	c.keys[k.ID] = kept
	return kept
}

// wrote drops key id: a statement of the batch in progress changes it (or
// may have, if it failed).
func (c *keyCache) wrote(id string) {
	delete(c.keys, id)
	delete(c.unitRows, id)
	delete(c.batchRows, id)
	c.written[id] = struct{}{}
}

// wroteAll drops every key: a statement changes keys by account.
func (c *keyCache) wroteAll() {
	clear(c.keys)
	clear(c.unitRows)
	clear(c.batchRows)
	c.allWritten = true
}

// batchEnded: whether the batch committed or not, the cached keys are as
// committed (see keyCache), and its written keys may be cached again. The
// accounts followed the batch's units (acctcache.go): kept if it committed.
func (c *keyCache) batchEnded(committed bool) {
	clear(c.written)
	c.allWritten = false
	if !committed {
		clear(c.accts) // it followed the units, which are undone
	} else {
		for id, k := range c.batchRows {
			if len(c.keys) >= keyCacheSize {
				clear(c.keys)
			}
			c.keys[id] = k // as committed now
		}
	}
	clear(c.unitRows)
	clear(c.batchRows)
}

// sawVersion records data_version as read at a BEGIN; if another connection
// committed since the last one, the cache is emptied.
func (c *keyCache) sawVersion(v int64) {
	if c.versionRead && v != c.dataVersion {
		clear(c.keys)
		clear(c.accts)
		clear(c.batchRows)
	}
	c.dataVersion, c.versionRead = v, true
}

// forget empties the cache and makes the next sawVersion start over: the
// writer could not read data_version.
func (c *keyCache) forget() {
	clear(c.keys)
	clear(c.accts)
	clear(c.batchRows)
	c.versionRead = false
}

// cloneKey copies k and everything it points to, in few allocations: the
// key with its times and IP, the hashes, the permissions' actions in one
// array (each resource's slice capped, so that an append copies), the maps.
func cloneKey(k *apikey.Key) *apikey.Key {
	box := &struct {
		k                      apikey.Key
		prevExp, used, expires time.Time
		ip                     string
	}{k: *k}
	c := &box.k
	if k.PrevSecretExpiresAt != nil {
		box.prevExp, c.PrevSecretExpiresAt = *k.PrevSecretExpiresAt, &box.prevExp
	}
	if k.LastUsedAt != nil {
		box.used, c.LastUsedAt = *k.LastUsedAt, &box.used
	}
	if k.ExpiresAt != nil {
		box.expires, c.ExpiresAt = *k.ExpiresAt, &box.expires
	}
	if k.LastUsedIP != nil {
		box.ip, c.LastUsedIP = *k.LastUsedIP, &box.ip
	}
	if k.SecretHash != nil || k.PrevSecretHash != nil {
		hashes := make([]byte, 0, len(k.SecretHash)+len(k.PrevSecretHash))
		c.SecretHash, hashes = cloneInto(hashes, k.SecretHash)
		c.PrevSecretHash, _ = cloneInto(hashes, k.PrevSecretHash)
	}
	if k.Permissions != nil {
		n := 0
		for _, acts := range k.Permissions {
			n += len(acts)
		}
		all := make([]string, 0, n)
		c.Permissions = make(map[string][]string, len(k.Permissions))
		for r, acts := range k.Permissions {
			c.Permissions[r], all = cloneInto(all, acts)
		}
	}
	c.Metadata = maps.Clone(k.Metadata)
	// The limits too: a caller may change a key's credits or rate limit in
	// place, and the cached copy must not follow (nor UpdateKey's picture
	// of the row, tx.readAs).
	if k.AllowedNetworks != nil {
		c.AllowedNetworks = slices.Clip(slices.Clone(k.AllowedNetworks))
	}
	c.RateLimit = k.RateLimit.Clone()
	c.Credits = k.Credits.Clone()
	return c
}

// cloneInto copies s to the end of buf (which has room for it) and returns
// the copy, capped at its length, and the rest of buf. nil stays nil.
func cloneInto[T any](buf, s []T) (clone, rest []T) {
	if s == nil {
		return nil, buf
	}
	start := len(buf)
	buf = append(buf, s...)
	return buf[start:len(buf):len(buf)], buf
}

// readKeys is a unit's keys as it read them (tx.readAs), by id: a unit
// reads one or two (its caller, the key it changes), kept in the tx itself;
// a map takes the rest (a unit that loads many keys must not scan a list
// for each).
type readKeys struct {
	few  [2]*apikey.Key
	more map[string]*apikey.Key
}

func (r *readKeys) get(id string) *apikey.Key {
	for _, k := range r.few {
		if k != nil && k.ID == id {
			return k
		}
	}
	return r.more[id]
}

// set keeps k in place of what was kept for its id.
func (r *readKeys) set(k *apikey.Key) {
	r.drop(k.ID)
	for i, f := range r.few {
		if f == nil {
			r.few[i] = k
			return
		}
	}
	if r.more == nil {
		r.more = map[string]*apikey.Key{}
	}
	r.more[k.ID] = k
}

func (r *readKeys) drop(id string) {
	for i, k := range r.few {
		if k != nil && k.ID == id {
			r.few[i] = nil
		}
	}
	delete(r.more, id)
}

func (r *readKeys) clear() {
	r.few = [2]*apikey.Key{}
	clear(r.more)
}
