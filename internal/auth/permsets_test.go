package auth

import (
	"reflect"
	"testing"

	"github.com/hsrcpay/apikeys/internal/perm"
)

// TestPermSets: a map's set is built once and is FromMap's; another map
// (even with the same grants, or at a reused address after a reset) gets its own.
func TestPermSets(t *testing.T) {
	var p permSets
	a := map[string][]string{"payment": {"read"}}
	b := map[string][]string{"payment": {"read", "create"}}
	sa := p.of(a)
	if !reflect.DeepEqual(sa, perm.FromMap(a)) || !reflect.DeepEqual(p.of(b), perm.FromMap(b)) {
		t.Fatal("not FromMap's sets")
	}
	if reflect.ValueOf(p.of(a)).Pointer() != reflect.ValueOf(sa).Pointer() {
		t.Error("a map's set was built again")
	}
	if got := p.of(nil); len(got) != 0 {
		t.Errorf("nil map: %v", got)
	}
	for i := range maxPermSets + 10 {
		m := map[string][]string{"r": {string(rune('a' + i%26))}}
		if got := p.of(m); !reflect.DeepEqual(got, perm.FromMap(m)) {
			t.Fatalf("%v: %v", m, got)
		}
	}
	if len(p.m) > maxPermSets {
		t.Errorf("memo holds %d sets, bound %d", len(p.m), maxPermSets)
	}
}
