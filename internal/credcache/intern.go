package credcache

import (
	"encoding/binary"
	"hash/maphash"
	"maps"
	"slices"
)

// Many keys share their permissions (a few roles) and often their metadata
// (a team, an environment). A Go map costs a few hundred bytes even when
// small, more than the rest of a snapshot, so the cache keeps one copy of
// each distinct map and lets every entry that has it point to it. The
// snapshots' maps were already shared with the cache and read only (Get);
// now they are shared between entries too, under the same rule. It also
// lets auth's permission-set memo (keyed by the map's identity, 1024 maps)
// serve every key with the same permissions from one expansion.
//
// Interned maps are counted (refs) and forgotten with their last entry, so
// the table never holds more maps than there are entries, and keyed by a
// hash of their content (maphash, this process's seed), compared in full on
// a hit, so no content is kept twice as a key.

// shared is one interned map.
type shared[V any] struct {
	m    map[string]V
	hash uint64
	refs int
	size int64 // estimated bytes: the map, its contents and this record
}

// interner holds the maps entries share, by the hash of their content.
type interner[V any] map[uint64][]*shared[V]

// get returns the interned copy of m (h = its hash), making it if need be
// with copyFn and counting its size into *bytes. Holds c.mu.
func (in interner[V]) get(h uint64, m map[string]V, eq func(a, b map[string]V) bool,
	copyFn func(map[string]V) map[string]V, sizeFn func(map[string]V) int64, bytes *int64) *shared[V] {
	for _, s := range in[h] {
		if eq(s.m, m) {
			s.refs++
			return s
		}
	}
	s := &shared[V]{m: copyFn(m), hash: h, refs: 1}
	s.size = sizeFn(s.m) + sharedOverhead
	*bytes += s.size
	in[h] = append(in[h], s)
	return s
}

// release drops an entry's reference to s (nil: none), and s itself with
// its last one. Holds c.mu.
func (in interner[V]) release(s *shared[V], bytes *int64) {
	if s == nil {
		return
	}
	if s.refs--; s.refs > 0 {
		return
	}
	*bytes -= s.size
	list := slices.DeleteFunc(in[s.hash], func(x *shared[V]) bool { return x == s })
	if len(list) == 0 {
		delete(in, s.hash)
	} else {
		in[s.hash] = list
	}
}

var seed = maphash.MakeSeed()

func writeLen(h *maphash.Hash, n int) {
	var b [binary.MaxVarintLen64]byte
	_, _ = h.Write(b[:binary.PutVarint(b[:], int64(n))])
}

func writeString(h *maphash.Hash, s string) {
	writeLen(h, len(s)) // length-prefixed: unambiguous
	_, _ = h.WriteString(s)
}

// hashPerms hashes a permission map's content: the sum of its entries'
// hashes, so that it needs no sorting (a map's order is random) and
// allocates nothing; a nil action list is told apart from an empty one
// (null and [] in JSON). Collisions only cost a comparison (get compares
// in full).
func hashPerms(m map[string][]string) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(seed)
	for r, actions := range m {
		h.Reset()
		writeString(&h, r)
		if actions == nil {
			_ = h.WriteByte(0)
		} else {
			_ = h.WriteByte(1)
			writeLen(&h, len(actions))
			for _, a := range actions {
				writeString(&h, a)
			}
		}
		sum += h.Sum64()
	}
	return sum
}

// hashMeta is hashPerms for metadata.
func hashMeta(m map[string]string) uint64 {
	var sum uint64
	var h maphash.Hash
	h.SetSeed(seed)
	for k, v := range m {
		h.Reset()
		writeString(&h, k)
		writeString(&h, v)
		sum += h.Sum64()
	}
	return sum
}

func equalPerms(a, b map[string][]string) bool {
	return maps.EqualFunc(a, b, func(x, y []string) bool { return (x == nil) == (y == nil) && slices.Equal(x, y) })
}

func equalMeta(a, b map[string]string) bool { return maps.Equal(a, b) }

func copyPerms(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for r, actions := range m {
		out[r] = slices.Clone(actions) // an empty list stays empty, not nil (null in JSON)
	}
	return out
}

func copyMeta(m map[string]string) map[string]string { return maps.Clone(m) }
