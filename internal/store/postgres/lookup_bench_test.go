//go:build unix

package postgres_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// benchSecret is key i's current secret (previous: the one its rotation
// replaced, in grace, on every 100th key); the seed hashes them in SQL as
// keys.Hash does (SHA-256 of the text).
func benchSecret(i int, previous bool) string {
	if previous {
		return "bench-prev-" + strconv.Itoa(i)
	}
	return "bench-secret-" + strconv.Itoa(i)
}

// seedLookupKeys writes n keys in 1000-key accounts with one statement per
// table (generate_series: the rows never cross the wire), then ANALYZE, on
// a connection of its own (the store's have HSRCPAY_STORE_TIMEOUT's
// statement_timeout).
func seedLookupKeys(b *testing.B, url string, n int) {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	schema := postgres.Schemas[apikey.Sandbox]
	start := time.Now()
	for _, q := range []string{
		`INSERT INTO ` + schema + `.accounts (id, created_at) SELECT 'acct_b' || a, now() FROM generate_series(0, $1::int / 1000) a`,
		`INSERT INTO ` + schema + `.api_keys (id, account_id, name, name_key, type, secret_hash, permissions, metadata, status,
			managed, deleted, created_at, updated_at, key_hint, last_used_at, last_used_ip, prev_secret_hash, prev_secret_expires_at)
		SELECT 'key_b' || lpad(i::text, 22, '0'), 'acct_b' || (i / 1000), 'bench ' || i, 'bench ' || i, 'SECRET',
			sha256(convert_to('bench-secret-' || i, 'UTF8')), '{"payment": ["read", "create"]}', '{"team": "bench"}', 'ACTIVE',
			FALSE, FALSE, now(), now(), 'sk_test_…abcd', now(), '203.0.113.7',
			CASE WHEN i % 100 = 0 THEN sha256(convert_to('bench-prev-' || i, 'UTF8')) END,
			CASE WHEN i % 100 = 0 THEN now() + interval '1 day' END
		FROM generate_series(0, $1::int - 1) i`,
		`ANALYZE ` + schema + `.api_keys`,
	} {
		args := []any{n}
		if strings.HasPrefix(q, "ANALYZE") {
			args = nil
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	b.Logf("seeded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkKeyBySecretHashAmong is the store read of a credential-cache miss
// (auth's lookup): a key by its secret's hash, among HSRCPAY_BENCH_LOOKUP_KEYS
// keys, for a random key's current secret, a rotated key's previous one, and
// a hash no key has (a forged key). One indexed query, prepared once per
// connection (pgx's statement cache); the plan is logged (-v).
func BenchmarkKeyBySecretHashAmong(b *testing.B) {
	n := storetest.BenchLookupKeys(b, 100)
	ctx := context.Background()
	// HSRCPAY_BENCH_LOOKUP_URL names a database to keep between runs (its
	// keys are seeded once; drop it when done), e.g. to compare queries at a
	// million keys without seeding them for each.
	url := os.Getenv("HSRCPAY_BENCH_LOOKUP_URL")
	if url == "" {
		url = storetest.FreshPostgresDB(b)
	}
	st, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	var have int
	if err := st.Pool().QueryRow(ctx, `SELECT count(*) FROM `+postgres.Schemas[apikey.Sandbox]+`.api_keys`).Scan(&have); err != nil {
		b.Fatal(err)
	}
	switch {
	case have == 0:
		seedLookupKeys(b, url, n)
	case have != n:
		b.Fatalf("%s holds %d keys, not HSRCPAY_BENCH_LOOKUP_KEYS=%d", url, have, n)
	}
	repo := st.Repo(apikey.Sandbox)
	explain(b, st, repo, keys.Hash(benchSecret(n/2, false)))

	storetest.BenchKeyBySecretHash(b, repo, n, benchSecret)
	b.Run(fmt.Sprintf("keys=%d/current-parallel", n), func(b *testing.B) {
		hs := storetest.LookupHashes(n, false, benchSecret)
		defer cputime.Report(b, cputime.Process())
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			i := int(next.Add(997))
			for pb.Next() {
				if _, err := repo.KeyBySecretHash(ctx, hs[i%len(hs)]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}

// explain logs the plan of the lookup as the server runs it: the generic
// plan a prepared statement settles on.
func explain(b *testing.B, st *postgres.Store, repo store.Repository, hash []byte) {
	b.Helper()
	r, ok := repo.(*postgres.Repo)
	if !ok {
		return
	}
	ctx := context.Background()
	conn, err := st.Pool().Acquire(ctx)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SET plan_cache_mode = force_generic_plan`); err != nil {
		b.Fatal(err)
	}
	defer func() { _, _ = conn.Exec(ctx, `RESET plan_cache_mode`) }()
	rows, err := conn.Query(ctx, `EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) `+postgres.KeyBySecretHashSQL(r), hash)
	if err != nil {
		b.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			b.Fatal(err)
		}
		plan = append(plan, line)
	}
	if err := rows.Err(); err != nil {
		b.Fatal(err)
	}
	b.Logf("plan:\n%s", strings.Join(plan, "\n"))
}
