//go:build unix

package sqlite_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
)

// BenchmarkRecordUsageSeeded is the usage flush of load.sh's verify_uncached
// row on its own: batches of distinct keys drawn at random among
// HSRCPAY_BENCH_USAGE_SAMPLE (100000) keys of a store seeded by
// .ci/bench/seed (HSRCPAY_BENCH_SEEDED, as for BenchmarkKeyBySecretHashSeeded;
// skipped without it), each batch one RecordUsage at a later time than the
// last, so that every row changes. One op is one key's use; cpu-ns/op is the
// process's CPU per key, the WAL's checkpoint included (run once the
// batches are done, as the checkpointer would). It writes last_used_* into
// that store, as the server does: the first run over a fresh seed also grows
// every row it touches (NULL to a time and an address), later runs only
// rewrite them.
func BenchmarkRecordUsageSeeded(b *testing.B) {
	secrets, st := openSeeded(b)
	repo := st.Repo(apikey.Sandbox)
	sample := 100_000
	if v := os.Getenv("HSRCPAY_BENCH_USAGE_SAMPLE"); v != "" {
		if _, err := fmt.Sscan(v, &sample); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // which keys to use, not a secret
	ids := make([]string, 0, sample)
	for _, i := range r.Perm(len(secrets))[:min(sample, len(secrets))] {
		k, err := repo.KeyBySecretHash(ctx, keys.Hash(secrets[i]))
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	at := time.Now().UTC()
	for _, batch := range []int{5_000, 30_000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			start := cputime.Process()
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				at = at.Add(time.Second)
				us := make([]store.Usage, n)
				for j, i := range r.Perm(len(ids))[:n] {
					us[j] = store.Usage{KeyID: ids[i], At: at, IP: "203.0.113.7"}
				}
				if err := repo.RecordUsage(ctx, us); err != nil {
					b.Fatal(err)
				}
				done += n
			}
			if _, err := st.DB(apikey.Sandbox).ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
				b.Fatal(err)
			}
			cputime.Report(b, start)
		})
	}
}
