//go:build unix

package server_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// BenchmarkVerify is a whole verify through Echo in-process, as the load
// script sends it (the managed secret as caller): a key that works (two key
// lookups: the caller's and the verified key's; four budgets spent), and a
// well-formed key nobody holds (one lookup more for nothing). "prod" runs it
// as production does (the JSON access log encoded to io.Discard, the
// sampled share of responses validated, net/http's request without
// httptest's parsing) and the body load.sh sends (the key alone); the
// others check every response, as tests do.
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name string
		key  func(testenv.Managed) string
		want string
		prod bool
	}{
		{"valid", func(m testenv.Managed) string { return m.Publishable }, `"code":"VALID"`, false},
		{"not_found", func(testenv.Managed) string {
			k, err := keys.New(keys.KindSecret, true)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}, `"code":"NOT_FOUND"`, false},
		{"prod", func(m testenv.Managed) string { return m.Publishable }, `"code":"VALID"`, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := testenv.Config{}
			if tc.prod {
				cfg.SampleResponses = config.DefaultResponseValidation
				cfg.Logger = slog.New(slog.NewJSONHandler(io.Discard, nil))
			}
			env := testenv.New(b, cfg)
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			body := `{"key":"` + tc.key(m) + `","permissions":{"payment":["read"]}}`
			if tc.prod {
				body = `{"key":"` + tc.key(m) + `"}`
			}
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				var req *http.Request
				if tc.prod {
					var err error
					req, err = http.NewRequestWithContext(context.Background(), http.MethodPost,
						"http://127.0.0.1"+server.BasePath+"/api-keys/verify", strings.NewReader(body))
					if err != nil {
						b.Fatal(err)
					}
					req.RemoteAddr = "192.0.2.1:1234"
					req.RequestURI = req.URL.RequestURI()
				} else {
					req = httptest.NewRequest(http.MethodPost, server.BasePath+"/api-keys/verify", strings.NewReader(body))
				}
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+m.Secret)
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), tc.want) {
					b.Fatalf("verify: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
}
