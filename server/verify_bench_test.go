//go:build unix

package server_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// BenchmarkVerify is a whole verify through Echo in-process, as the load
// script sends it (the managed secret as caller): a key that works (two key
// lookups: the caller's and the verified key's; four budgets spent), and a
// well-formed key nobody holds (one lookup more for nothing).
func BenchmarkVerify(b *testing.B) {
	for _, tc := range []struct {
		name string
		key  func(testenv.Managed) string
		want string
	}{
		{"valid", func(m testenv.Managed) string { return m.Publishable }, `"code":"VALID"`},
		{"not_found", func(testenv.Managed) string {
			k, err := keys.New(keys.KindSecret, true)
			if err != nil {
				b.Fatal(err)
			}
			return k
		}, `"code":"NOT_FOUND"`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := testenv.New(b, testenv.Config{})
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			body := `{"key":"` + tc.key(m) + `","permissions":{"payment":["read"]}}`
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, server.BasePath+"/api-keys/verify", strings.NewReader(body))
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
