package perm

import (
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestCatalogFromSpec(t *testing.T) {
	doc := &openapi3.T{Info: &openapi3.Info{Extensions: map[string]any{
		CatalogExtension: map[string]any{"payment": []any{"read", "create"}, "account:api:key": []any{"create"}},
	}}}
	c, err := LoadCatalog(doc)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Unknown(map[string][]string{"payment": {"read", "explode"}, "nope": {"x"}, "ghost": {}}); !reflect.DeepEqual(got, []string{"ghost", "nope:x", "payment:explode"}) {
		t.Fatalf("Unknown = %v", got)
	}
	if got := c.All(); !reflect.DeepEqual(got, map[string][]string{"payment": {"create", "read"}, "account:api:key": {"create"}}) {
		t.Fatalf("All = %v", got)
	}
	for _, bad := range []map[string]any{nil, {CatalogExtension: "x"}, {CatalogExtension: map[string]any{"a": "b"}}, {CatalogExtension: map[string]any{"a": []any{1}}}} {
		if _, err := LoadCatalog(&openapi3.T{Info: &openapi3.Info{Extensions: bad}}); err == nil {
			t.Errorf("catalog %v accepted", bad)
		}
	}
}

func TestSetsSplitOnTheLastColon(t *testing.T) {
	s := FromMap(map[string][]string{"account:api:key": {"create", "update"}})
	if !s.Has("account:api:key:create") || !s.Has("account:api:key:update") || s.Has("account:api:key") {
		t.Fatalf("%v", s)
	}
	if got := s.Missing(FromList([]string{"account:api:key:create", "payment:read", " refund:create "})); !reflect.DeepEqual(got, []string{"payment:read", "refund:create"}) {
		t.Fatalf("Missing = %v", got)
	}
}

// TestFromMapMembers: every grant, once, however many (past the 64 kept on
// the stack too) and whatever order the map iterates in; duplicates and
// empty lists add nothing.
func TestFromMapMembers(t *testing.T) {
	for _, n := range []int{0, 1, 7, 64, 65, 300} {
		m := map[string][]string{"empty": {}}
		want := Set{}
		for i := range n {
			res := "res" + string(rune('a'+i%26))
			a := "act" + string(rune('a'+i/26)) + string(rune('a'+i%7))
			m[res] = append(m[res], a, a)
			want[res+":"+a] = struct{}{}
		}
		for range 5 {
			if got := FromMap(m); !reflect.DeepEqual(got, want) {
				t.Fatalf("%d grants: FromMap = %v, want %v", n, got, want)
			}
		}
	}
}

// TestExpands: true exactly when the set is FromMap's of the map.
func TestExpands(t *testing.T) {
	m := map[string][]string{"account:api:key": {"create", "read"}, "payment": {"read"}}
	for _, tc := range []struct {
		s    Set
		m    map[string][]string
		want bool
	}{
		{FromMap(m), m, true},
		{Set{}, nil, true},
		{Set{}, map[string][]string{"a": {}}, true},
		{FromMap(m), map[string][]string{"account:api:key": {"create", "read"}}, false},                       // fewer
		{FromMap(m), map[string][]string{"account:api:key": {"create", "read"}, "payment": {"write"}}, false}, // other
		{FromList([]string{"a:x", "a:y"}), map[string][]string{"a": {"x", "x"}}, false},                       // a duplicate
		{FromList([]string{"a:x"}), map[string][]string{"a": {"x"}, "b": {"y"}}, false},                       // more
		{FromList([]string{"a:b:c"}), map[string][]string{"a": {"b:c"}}, true},                                // the same string
		{FromList([]string{strings.Repeat("r", 200) + ":x"}), map[string][]string{strings.Repeat("r", 200): {"x"}}, true},
	} {
		if got := tc.s.Expands(tc.m); got != tc.want {
			t.Errorf("%v.Expands(%v) = %v, want %v", tc.s, tc.m, got, tc.want)
		}
		if tc.want && !reflect.DeepEqual(tc.s, FromMap(tc.m)) {
			t.Errorf("%v: Expands but not FromMap's", tc.m)
		}
	}
}
