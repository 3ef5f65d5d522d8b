//go:build unix

package sqlite_test

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

func benchSecret(i int, previous bool) string {
	if previous {
		return "bench-prev-" + strconv.Itoa(i)
	}
	return "bench-secret-" + strconv.Itoa(i)
}

// BenchmarkKeyBySecretHashAmong is the store read of a credential-cache miss: a
// key by its secret's hash among HSRCPAY_BENCH_LOOKUP_KEYS keys (1000 per
// account, every 100th rotated with its previous secret in grace), for a
// random key's current secret, a rotated key's previous one, and a hash no
// key has. The query plan is logged (-v).
func BenchmarkKeyBySecretHashAmong(b *testing.B) {
	n := storetest.BenchLookupKeys(b, 100)
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	repo := st.Repo(apikey.Sandbox)
	start, now := time.Now(), time.Now().UTC()
	grace := now.Add(24 * time.Hour)
	const batch = 10_000
	for lo := 0; lo < n; lo += batch {
		err := repo.InTx(ctx, func(tx store.Tx) error {
			for i := lo; i < min(lo+batch, n); i++ {
				acct := "acct_b" + strconv.Itoa(i/1000)
				if i%1000 == 0 {
					if err := tx.CreateAccount(ctx, acct, now); err != nil {
						return err
					}
				}
				k := &apikey.Key{
					ID: fmt.Sprintf("key_b%022d", i), AccountID: acct, Name: "bench " + strconv.Itoa(i), Type: apikey.TypeSecret,
					SecretHash: keys.Hash(benchSecret(i, false)), KeyHint: "sk_test_…abcd", Status: apikey.StatusActive,
					Permissions: map[string][]string{"payment": {"read", "create"}}, Metadata: map[string]string{"team": "bench"},
					CreatedAt: now, UpdatedAt: now,
				}
				if err := tx.InsertKey(ctx, k); err != nil {
					return err
				}
				if i%100 == 0 { // rotated: InsertKey writes no previous secret (a new key has none)
					k.PrevSecretHash, k.PrevSecretExpiresAt = keys.Hash(benchSecret(i, true)), &grace
					if err := tx.UpdateKey(ctx, k); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	if _, err := st.DB(apikey.Sandbox).ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	explainSQLite(b, st)

	storetest.BenchKeyBySecretHash(b, repo, n, benchSecret)
}

func explainSQLite(b *testing.B, st *sqlite.Store) {
	b.Helper()
	for _, q := range sqlite.ByHashSQL {
		b.Logf("plan: %s", explainQuery(b, st, q))
	}
}

func explainQuery(b *testing.B, st *sqlite.Store, q string) string {
	b.Helper()
	rows, err := st.DB(apikey.Sandbox).QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+q, keys.Hash("x"))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = rows.Close() }()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	return strings.Join(plan, "; ")
}

// BenchmarkKeyBySecretHashSeeded is the store read of load.sh's
// verify_uncached row on its own: a random key among those of a store seeded
// by .ci/bench/seed, looked up by eight goroutines (as many as the readers),
// with the process's CPU per lookup. HSRCPAY_BENCH_SEEDED names the
// directory profile.sh keeps with SEED_DIR (DIR/sqlite: data/ and secrets);
// skipped without it. The store is opened as the server opens it, so its
// readers' settings (page cache, mmap_size) are what is measured.
func BenchmarkKeyBySecretHashSeeded(b *testing.B) {
	secrets, st := openSeeded(b)
	repo := st.Repo(apikey.Sandbox)
	hashes := make([][]byte, len(secrets))
	for i, s := range secrets {
		hashes[i] = keys.Hash(s)
	}
	b.Run(fmt.Sprintf("keys=%d", len(hashes)), func(b *testing.B) {
		defer cputime.Report(b, cputime.Process())
		b.ReportAllocs()
		b.SetParallelism(8 / max(1, runtime.GOMAXPROCS(0)))
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			r := rand.New(rand.NewPCG(seed.Add(1), 0)) //nolint:gosec // which keys to look up, not a secret
			for pb.Next() {
				if _, err := repo.KeyBySecretHash(context.Background(), hashes[r.IntN(len(hashes))]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// openSeeded opens the store .ci/bench/seed seeded in HSRCPAY_BENCH_SEEDED
// (a SEED_DIR/sqlite of profile.sh verify_uncached: data/ and secrets) as
// the server opens it, and reads its secrets; the benchmark is skipped
// without it.
func openSeeded(b *testing.B) ([]string, *sqlite.Store) {
	b.Helper()
	dir := os.Getenv("HSRCPAY_BENCH_SEEDED")
	if dir == "" {
		b.Skip("HSRCPAY_BENCH_SEEDED (a SEED_DIR/sqlite of profile.sh verify_uncached) is not set")
	}
	f, err := os.Open(filepath.Join(dir, "secrets")) //nolint:gosec // the benchmark's input, named by whoever runs it
	if err != nil {
		b.Fatal(err)
	}
	var secrets []string
	for sc := bufio.NewScanner(f); sc.Scan(); {
		secrets = append(secrets, sc.Text())
	}
	_ = f.Close()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "data"), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() })
	return secrets, st
}
