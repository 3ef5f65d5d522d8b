package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
)

// LookupHashes returns 4096 secret hashes of keys seeded as secret(k,
// previous) for k in [0, n): spread over the table (7919 is prime), the same
// every run; previous ones only for every hundredth key, which the stores'
// lookup benchmarks seed with a previous secret in grace.
func LookupHashes(n int, previous bool, secret func(k int, previous bool) string) [][]byte {
	out := make([][]byte, 4096)
	for i := range out {
		k := (i*7919 + 13) % n
		if previous {
			k -= k % 100
		}
		out[i] = keys.Hash(secret(k, previous))
	}
	return out
}

// BenchKeyBySecretHash benchmarks repo's lookup by secret hash among the n
// keys seeded as secret(k, previous): a current secret, a previous one in
// grace, and a hash no key has, each as a sub-benchmark keys=n/<which>.
func BenchKeyBySecretHash(b *testing.B, repo store.Repository, n int, secret func(k int, previous bool) string) {
	b.Helper()
	ctx := context.Background()
	for _, c := range []struct {
		name   string
		hashes [][]byte
		found  bool
	}{
		{"current", LookupHashes(n, false, secret), true},
		{"previous", LookupHashes(n, true, secret), true},
		{"unknown", [][]byte{keys.Hash("no such secret")}, false},
	} {
		b.Run(fmt.Sprintf("keys=%d/%s", n, c.name), func(b *testing.B) {
			defer cputime.Report(b, cputime.Process())
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				_, err := repo.KeyBySecretHash(ctx, c.hashes[i%len(c.hashes)])
				i++
				if c.found && err != nil || !c.found && !errors.Is(err, store.ErrNotFound) {
					b.Fatal(err)
				}
			}
		})
	}
}
