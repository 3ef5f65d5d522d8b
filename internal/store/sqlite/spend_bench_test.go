//go:build unix

package sqlite_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// BenchmarkSpendCredits is a verify's spend of one key's credits, the
// store's part of the verify_credits row: one at a time (each its own
// batch and COMMIT) and from benchWriters goroutines at once on the same
// key (group-committed, as under load), spent (cost 1 of plenty), checked
// only (cost 0: nothing to write) and refused (none left).
func BenchmarkSpendCredits(b *testing.B) {
	for _, tc := range []struct {
		name      string
		remaining int64
		cost      int64
		parallel  bool
		wantOK    bool
	}{
		{"one", apikey.MaxCredits, 1, false, true},
		{"parallel", apikey.MaxCredits, 1, true, true},
		{"parallel_cost0", apikey.MaxCredits, 0, true, true},
		{"parallel_refused", 0, 1, true, false},
	} {
		b.Run(tc.name, func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Synchronous: "NORMAL"})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
			repo := st.Repo(apikey.Sandbox)
			if err := store.CreateAccount(ctx, repo, benchAccount, time.Now()); err != nil {
				b.Fatal(err)
			}
			k := newKey(b, "credits")
			// A daily refill: every spend computes the key's boundary, none is due.
			k.Credits = &apikey.Credits{Remaining: tc.remaining, RefilledAt: time.Now().UTC().Truncate(time.Second),
				Refill: &apikey.CreditRefill{Amount: max(tc.remaining, 1), Interval: apikey.RefillDaily}}
			if err := store.InsertKey(ctx, repo, k); err != nil {
				b.Fatal(err)
			}
			spend := func() bool {
				_, ok, err := repo.SpendCredits(ctx, k.ID, tc.cost, time.Now())
				if err != nil || ok != tc.wantOK {
					b.Errorf("spend: ok %v, %v; want ok %v", ok, err, tc.wantOK)
					return false
				}
				return true
			}
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			if !tc.parallel {
				for b.Loop() {
					if !spend() {
						return
					}
				}
				return
			}
			b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			batches0, units0 := sqlite.Batches(st, apikey.Sandbox)
			defer func() {
				if batches, units := sqlite.Batches(st, apikey.Sandbox); batches > batches0 {
					b.ReportMetric(float64(units-units0)/float64(batches-batches0), "units/batch")
				}
			}()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if !spend() {
						return
					}
				}
			})
		})
	}
}
