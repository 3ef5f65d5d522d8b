//go:build unix

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// BenchmarkVerifyUncached is a whole verify through Echo in-process on
// PostgreSQL, with production's settings (responses sampled), of keys the
// credential cache does not hold: the account holds
// HSRCPAY_BENCH_LOOKUP_KEYS keys (10 000 by default, make bench-go; 1000000
// for the docs' figure: seeding then takes minutes), the requests verify
// 4096 of them in turn, and the cache holds two keys, so the caller's key
// stays cached (the most recent) and every verified key is read from the
// store and evicts the one before. "cached" verifies one of them again and
// again, in the same server: the difference is what a miss costs.
func BenchmarkVerifyUncached(b *testing.B) {
	n := storetest.BenchLookupKeys(b, 4096)
	ctx := context.Background()
	url := storetest.FreshPostgresDB(b)
	st, err := postgres.Open(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	env := testenv.New(b, testenv.Config{Store: st, CredentialCacheKeys: 2, SampleResponses: config.DefaultResponseValidation})
	m := env.Bootstrap(benchAcct)[apikey.Sandbox]
	tokens := seedVerifiable(b, url, n)
	for _, tc := range []struct {
		name   string
		tokens []string
	}{{"cached", tokens[:1]}, {"uncached", tokens}} {
		b.Run(tc.name+"/keys="+strconv.Itoa(n), func(b *testing.B) {
			bodies := make([]string, len(tc.tokens))
			for i, tok := range tc.tokens {
				bodies[i] = `{"key":"` + tok + `","permissions":{"payment":["read"]}}`
			}
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			i := 0
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, server.BasePath+"/api-keys/verify", strings.NewReader(bodies[i%len(bodies)]))
				i++
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+m.Secret)
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"code":"VALID"`) {
					b.Fatalf("verify: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}

// seedVerifiable writes n sandbox secret keys of benchAcct with COPY (on a
// connection of its own: no statement timeout; without the live-key
// triggers when the role is a superuser, as the test database's is), and returns 4096 of their secrets, spread over
// the table.
func seedVerifiable(b *testing.B, url string, n int) []string {
	b.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	// Without the triggers that count an account's live keys (migration
	// 00008): a million updates of one account row in one transaction take
	// PostgreSQL many minutes. The count is set once at the end.
	noTriggers := true
	if _, err := conn.Exec(ctx, `SET session_replication_role = replica`); err != nil {
		noTriggers = false // not a superuser: seed with them, slower
		b.Logf("seeding with the live-key triggers: %v", err)
	}
	start, now := time.Now(), time.Now().UTC()
	perms, meta := map[string][]string{"payment": {"read", "create"}}, map[string]string{"team": "bench"}
	sample := make([]string, 0, 4096)
	stride := n / 4096
	i := 0
	rows := pgx.CopyFromFunc(func() ([]any, error) {
		if i == n {
			return nil, nil
		}
		tok, err := keys.New(keys.KindSecret, true)
		if err != nil {
			return nil, err
		}
		if i%stride == 0 && len(sample) < cap(sample) {
			sample = append(sample, tok)
		}
		name := "uncached " + strconv.Itoa(i)
		i++
		return []any{"key_u" + strconv.Itoa(i), benchAcct, name, namekey.Key(name), apikey.TypeSecret, keys.Hash(tok),
			perms, meta, apikey.StatusActive, false, false, now, now, keys.Hint(tok)}, nil
	})
	_, err = conn.CopyFrom(ctx, pgx.Identifier{postgres.Schemas[apikey.Sandbox], "api_keys"},
		[]string{"id", "account_id", "name", "name_key", "type", "secret_hash", "permissions", "metadata", "status",
			"managed", "deleted", "created_at", "updated_at", "key_hint"}, rows)
	if err != nil {
		b.Fatalf("seed: %v", err)
	}
	schema := postgres.Schemas[apikey.Sandbox]
	after := []string{`ANALYZE ` + schema + `.api_keys`}
	if noTriggers {
		after = append([]string{`SET session_replication_role = DEFAULT`,
			`UPDATE ` + schema + `.accounts SET live_keys = live_keys + ` + strconv.Itoa(n) + ` WHERE id = '` + benchAcct + `'`}, after...)
	}
	for _, q := range after {
		if _, err := conn.Exec(ctx, q); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	return sample
}
