package perm_test

import (
	"testing"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/perm"
)

// The permission work of one request: authenticate expands the key's stored
// map into a Set, authorize checks the operation's permission, and create
// checks the requested map against the catalog and the caller's set.

var (
	sinkSet     perm.Set
	sinkBool    bool
	sinkStrings []string
)

func catalog(b *testing.B) perm.Catalog {
	b.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		b.Fatal(err)
	}
	c, err := perm.LoadCatalog(doc)
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// requested is what the load test's create asks for.
var requested = map[string][]string{"payment": {"create", "read"}, "refund": {"read"}}

// BenchmarkFromMap expands a managed secret key's grants (the whole catalog).
func BenchmarkFromMap(b *testing.B) {
	all := catalog(b).All()
	b.ReportAllocs()
	for b.Loop() {
		sinkSet = perm.FromMap(all)
	}
}

func BenchmarkHas(b *testing.B) {
	s := perm.FromMap(catalog(b).All())
	b.ReportAllocs()
	for b.Loop() {
		sinkBool = s.Has("account:api:key:create")
	}
}

func BenchmarkCatalogUnknown(b *testing.B) {
	c := catalog(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkStrings = c.Unknown(requested)
	}
}

func BenchmarkMissing(b *testing.B) {
	s := perm.FromMap(catalog(b).All())
	b.ReportAllocs()
	for b.Loop() {
		sinkStrings = s.Missing(perm.FromMap(requested))
	}
}

// BenchmarkCreateChecks is all of the above for one create request.
func BenchmarkCreateChecks(b *testing.B) {
	c := catalog(b)
	all := c.All()
	b.ReportAllocs()
	for b.Loop() {
		s := perm.FromMap(all)
		if !s.Has("account:api:key:create") || len(c.Unknown(requested)) > 0 || len(s.Missing(perm.FromMap(requested))) > 0 {
			b.Fatal("unexpected permission result")
		}
	}
}
