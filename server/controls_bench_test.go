//go:build unix

package server_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// BenchmarkVerifyControls is BenchmarkVerify of a key carrying the per-key
// controls of issue 22, each beside its plain counterpart in the same run:
// plain (no control), an allowlist holding client_ip (VALID: one prefix
// walk more) and not holding it (NETWORK_NOT_ALLOWED: no budget spent), a
// rate limit of its own not reached and reached (RATE_LIMITED), usage
// credits that never run out (VALID: one spend per verify, the writer's unit
// reading and writing the row) and none left (USAGE_EXCEEDED: read, refused,
// nothing written). The _postgres cases run plain and credits on PostgreSQL
// (skipped without it), where the spend is a round trip to the database:
// the price of exact credits (docs/api.md#usage-credits).
func BenchmarkVerifyControls(b *testing.B) {
	for _, tc := range []struct {
		name, clientIP, want string
		req                  func(*client.CreateAPIKeyRequest)
		postgres             bool
	}{
		{"plain", "", `"code":"VALID"`, func(*client.CreateAPIKeyRequest) {}, false},
		{"allowlist_valid", "10.20.30.40", `"code":"VALID"`, func(r *client.CreateAPIKeyRequest) {
			r.AllowedNetworks = &[]string{"192.0.2.0/24", "2001:db8::/32", "10.0.0.0/8"}
		}, false},
		{"allowlist_refused", "198.51.100.1", `"code":"NETWORK_NOT_ALLOWED"`, func(r *client.CreateAPIKeyRequest) {
			r.AllowedNetworks = &[]string{"192.0.2.0/24", "2001:db8::/32", "10.0.0.0/8"}
		}, false},
		// Its own rate limit, never reached (the bucket's rate differs from
		// the default's: AllowRate), and one spent at once (RATE_LIMITED).
		{"rate_limit_valid", "", `"code":"VALID"`, func(r *client.CreateAPIKeyRequest) {
			r.RateLimit = &client.RateLimit{Limit: 1_000_000, Window: "1s"}
		}, false},
		{"rate_limited", "", `"code":"RATE_LIMITED"`, func(r *client.CreateAPIKeyRequest) {
			r.RateLimit = &client.RateLimit{Limit: 1, Window: "1d"}
		}, false},
		{"credits_valid", "", `"code":"VALID"`, func(r *client.CreateAPIKeyRequest) {
			r.Credits = &client.Credits{Remaining: 1_000_000_000_000}
		}, false},
		{"usage_exceeded", "", `"code":"USAGE_EXCEEDED"`, func(r *client.CreateAPIKeyRequest) {
			r.Credits = &client.Credits{Remaining: 0}
		}, false},
		{"plain_postgres", "", `"code":"VALID"`, func(*client.CreateAPIKeyRequest) {}, true},
		{"credits_valid_postgres", "", `"code":"VALID"`, func(r *client.CreateAPIKeyRequest) {
			r.Credits = &client.Credits{Remaining: 1_000_000_000_000}
		}, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testenv.Config{}
			if tc.postgres {
				st, err := postgres.Open(context.Background(), storetest.FreshPostgresDB(b))
				if err != nil {
					b.Fatal(err)
				}
				cfg.Store = st
			}
			env := testenv.New(b, cfg)
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			req := client.CreateAPIKeyRequest{Name: "bench " + tc.name, Permissions: client.Permissions{"payment": {"read"}}}
			tc.req(&req)
			k, err := env.Client(m.Secret).CreateAPIKey(context.Background(), benchAcct, req)
			if err != nil {
				b.Fatal(err)
			}
			body := `{"key":"` + k.Key + `","permissions":{"payment":["read"]}`
			if tc.clientIP != "" {
				body += `,"client_ip":"` + tc.clientIP + `"`
			}
			body += `}`
			if tc.name == "rate_limited" { // spend its one request
				if _, err := env.Client(m.Secret).VerifyKey(context.Background(), k.Key); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				r := httptest.NewRequest(http.MethodPost, server.BasePath+"/api-keys/verify", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+m.Secret)
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, r)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
					b.Fatalf("verify: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
