package credcache

import (
	"time"
	"unsafe"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// The memory bound (Options.MaxBytes) counts what each entry keeps alive,
// estimated from its content when it is cached: the snapshot and the
// strings, hashes and times it points to, its slots in the LRU and the
// indexes, and the interned maps once each. The estimates round every
// allocation up to Go's size classes and the maps' tables to their load
// factor; TestEntryBytesAreHonest compares them with the heap the runtime
// reports (runtime.MemStats) for small, typical and large keys, and holds
// them within [-10 %, +50 %] of it.

// sizeClasses are the Go allocator's size classes up to 32 KiB
// (runtime/sizeclasses.go); larger objects take whole 8 KiB pages.
var sizeClasses = [...]int{8, 16, 24, 32, 48, 64, 80, 96, 112, 128, 144, 160, 176, 192, 208, 224, 240, 256,
	288, 320, 352, 384, 416, 448, 480, 512, 576, 640, 704, 768, 896, 1024, 1152, 1280, 1408, 1536, 1792,
	2048, 2304, 2688, 3072, 3200, 3456, 4096, 4864, 5376, 6144, 6528, 6784, 6912, 8192, 9472, 9728, 10240,
	10880, 12288, 13568, 14336, 16384, 18432, 19072, 20480, 21760, 24576, 27264, 28672, 32768}

// alloc is what an allocation of n bytes takes on the heap.
func alloc(n int) int64 {
	if n <= 0 {
		return 0
	}
	for _, c := range sizeClasses {
		if n <= c {
			return int64(c)
		}
	}
	return int64((n + 8191) &^ 8191)
}

func str(s string) int64 { return alloc(len(s)) }

// mapBytes estimates a map of n entries of slot bytes each (key and value
// side by side, as Go's swiss tables lay them out): a header, and groups of
// 8 slots and 8 control bytes, at most 7/8 full, doubled as they fill (so
// on average 3/4 of the way between two sizes: counted as half full).
func mapBytes(n, slot int) int64 {
	const header = 48
	group := 8 + 8*slot
	if n <= 8 {
		return header + alloc(group)
	}
	groups := (n*2 + 7) / 8 // half full
	return header + 64 + alloc(groups*group)
}

var (
	keyStruct = alloc(int(unsafe.Sizeof(apikey.Key{})))
	timeBox   = alloc(int(unsafe.Sizeof(time.Time{})))
	// lruSlot is one positive entry's share of the LRU (simplelru): its list element
	// (two pointers, the list, the key, the value, an expiry the library
	// keeps for its expirable variant) and its slot in the LRU's map (key,
	// pointer), at half the load factor as mapBytes counts.
	lruSlot = alloc(int(unsafe.Sizeof(struct {
		next, prev, list unsafe.Pointer
		k                entryKey
		v                entry
		exp              time.Time
		b                uint8
	}{}))) + 2*int64(unsafe.Sizeof(entryKey{})+8+1)
	// indexSlot is its share of byID: a slot (id, slice) at half load and
	// the slice's array of one hash.
	indexSlot = 2*int64(unsafe.Sizeof(idKey{})+unsafe.Sizeof([][hashLen]byte{})+1) + alloc(hashLen)
	// sharedOverhead is an interned map's record and its slot in the
	// interner's table.
	sharedOverhead = alloc(int(unsafe.Sizeof(shared[string]{}))) + 2*(8+24+1) + 8
	// negativeEntryBytes is one negative entry: its list element and its
	// slot in the negative LRU's map.
	negativeEntryBytes = alloc(int(unsafe.Sizeof(struct {
		next, prev, list unsafe.Pointer
		k                entryKey
		v, exp           time.Time
		b                uint8
	}{}))) + 2*int64(unsafe.Sizeof(entryKey{})+8+1)
)

// entryBytes estimates what a positive entry of snapshot k (its maps
// aside: interned, counted by permsBytes and metaBytes) keeps alive.
func entryBytes(k *apikey.Key) int64 {
	n := keyStruct + lruSlot + indexSlot
	for _, s := range []string{k.ID, k.AccountID, k.Name, k.NameKey, k.KeyHint, k.CreatedBy.ID, k.CreatedBy.RequestID} {
		n += str(s)
	}
	for _, s := range []string{k.Type, k.Status, k.CreatedBy.Kind} { // canonical: shared when one of constants
		if _, ok := constants[s]; !ok {
			n += str(s)
		}
	}
	n += alloc(len(k.SecretHash)) + alloc(len(k.PrevSecretHash))
	for _, t := range []*time.Time{k.PrevSecretExpiresAt, k.ExpiresAt, k.LastUsedAt} {
		if t != nil {
			n += timeBox
		}
	}
	if k.LastUsedIP != nil {
		n += alloc(int(unsafe.Sizeof(""))) + str(*k.LastUsedIP)
	}
	if len(k.AllowedNetworks) > 0 { // a prefix holds no pointer (netip.Addr's zone is interned)
		n += alloc(len(k.AllowedNetworks) * int(unsafe.Sizeof(k.AllowedNetworks[0])))
	}
	if k.RateLimit != nil {
		n += alloc(int(unsafe.Sizeof(*k.RateLimit)))
	}
	if k.Credits != nil {
		n += alloc(int(unsafe.Sizeof(*k.Credits)))
		if k.Credits.Refill != nil {
			n += alloc(int(unsafe.Sizeof(*k.Credits.Refill))) + str(k.Credits.Refill.Interval)
		}
	}
	return n
}

func permsBytes(m map[string][]string) int64 {
	n := mapBytes(len(m), int(unsafe.Sizeof("")+unsafe.Sizeof([]string{})))
	for r, actions := range m {
		n += str(r) + alloc(cap(actions)*int(unsafe.Sizeof("")))
		for _, a := range actions {
			n += str(a)
		}
	}
	return n
}

func metaBytes(m map[string]string) int64 {
	n := mapBytes(len(m), 2*int(unsafe.Sizeof("")))
	for k, v := range m {
		n += str(k) + str(v)
	}
	return n
}

// The few values a key's short fields take, kept once (canonical) rather
// than once per entry as the store's rows are scanned.
var constants = map[string]string{}

func init() {
	for _, s := range []string{apikey.TypeSecret, apikey.TypePublishable, apikey.StatusActive, apikey.StatusInactive,
		apikey.ActorKey, apikey.ActorJWT, apikey.ActorPlatform} {
		constants[s] = s
	}
}

func canonical(s string) string {
	if c, ok := constants[s]; ok {
		return c
	}
	return s
}
