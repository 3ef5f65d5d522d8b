//go:build unix

package sqlite_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
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
	rows, err := st.DB(apikey.Sandbox).QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+sqlite.ByHashSQL, keys.Hash("x"))
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
	b.Logf("plan: %s", strings.Join(plan, "; "))
}
