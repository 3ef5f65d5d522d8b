//go:build unix

package server_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// BenchmarkRead is the read operations through Echo in-process, as the load
// script sends them and production runs them (responses sampled, the JSON
// access log encoded to io.Discard), on SQLite and on PostgreSQL: a page of
// 20 keys (the default), a page of 100 audit events, and one key. The
// account holds readSeedKeys keys, each created through the API (so each
// has its audit event). B/op and allocs/op include the harness's request
// and recorder.
func BenchmarkRead(b *testing.B) {
	const readSeedKeys = 120
	for _, st := range []string{"sqlite", "postgres"} {
		b.Run(st, func(b *testing.B) {
			cfg := testenv.Config{
				SampleResponses: config.DefaultResponseValidation,
				Logger:          slog.New(slog.NewJSONHandler(io.Discard, nil)),
			}
			if st == "postgres" {
				pg, err := postgres.Open(context.Background(), storetest.FreshPostgresDB(b))
				if err != nil {
					b.Fatalf("open postgres: %v", err)
				}
				cfg.Store = pg
			}
			env := testenv.New(b, cfg)
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			for i := range readSeedKeys {
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, newCreateRequest(m.Secret, benchCreateBody(fmt.Sprintf("seed %d", i))))
				if rec.Code != http.StatusCreated {
					b.Fatalf("create: %d %s", rec.Code, rec.Body)
				}
			}
			for _, tc := range []struct{ name, path string }{
				{"list_keys", "/api-keys/?account_id=" + benchAcct},
				{"list_audit_events", "/audit-events?account_id=" + benchAcct + "&limit=100"},
				{"get_key", "/api-keys/" + m.PublishableID},
			} {
				b.Run(tc.name, func(b *testing.B) {
					b.ReportAllocs()
					defer cputime.Report(b, cputime.Process())
					for b.Loop() {
						req, err := http.NewRequestWithContext(context.Background(), http.MethodGet,
							"http://127.0.0.1"+server.BasePath+tc.path, nil)
						if err != nil {
							b.Fatal(err)
						}
						req.RemoteAddr = "192.0.2.1:1234"
						req.RequestURI = req.URL.RequestURI()
						req.Header.Set("Authorization", "Bearer "+m.Secret)
						rec := httptest.NewRecorder()
						env.Server.ServeHTTP(rec, req)
						if rec.Code != http.StatusOK {
							b.Fatalf("%s: %d %s", tc.name, rec.Code, rec.Body)
						}
					}
				})
			}
		})
	}
}
