package auth

import (
	"reflect"
	"sync"

	"github.com/hsrcpay/apikeys/internal/perm"
)

// maxPermSets bounds the memo; past it, it starts over.
const maxPermSets = 1024

// permSets remembers the permission set expanded from a key's permissions
// map, by the map's identity. The credential cache hands out snapshots of
// one key that share its permissions map (never changed once read: the
// cache's readers share it across goroutines already), so every request a
// cached key authenticates would expand the same map again (the whole
// catalog for a managed secret key: ~2.4 µs and 1.3 KB). An entry holds its
// map, so a map it names is alive and its address is no other map's.
type permSets struct {
	mu sync.Mutex
	m  map[uintptr]permSet
}

type permSet struct {
	perms map[string][]string
	set   perm.Set
}

// of returns perm.FromMap(perms), built once per map. Sets are shared: no
// caller changes one.
func (p *permSets) of(perms map[string][]string) perm.Set {
	if perms == nil {
		return perm.FromMap(nil)
	}
	id := reflect.ValueOf(perms).Pointer()
	p.mu.Lock()
	e, ok := p.m[id]
	p.mu.Unlock()
	if ok {
		return e.set
	}
	set := perm.FromMap(perms)
	p.mu.Lock()
	if p.m == nil || len(p.m) >= maxPermSets {
		p.m = make(map[uintptr]permSet)
	}
	p.m[id] = permSet{perms, set}
	p.mu.Unlock()
	return set
}
