package server_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// accessLines returns the access log's lines (msg "request") by path.
func accessLines(t *testing.T, logs string) map[string][]map[string]any {
	t.Helper()
	out := map[string][]map[string]any{}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %.200s", line)
		}
		if rec["msg"] == "request" {
			p, _ := rec["path"].(string)
			out[p] = append(out[p], rec)
		}
	}
	return out
}

// TestAccessLogPrincipalAndProbes: an authenticated request's access line
// names its key_id and account_id (a JWT's, its account only; a failed
// authentication, neither); /healthz and /readyz log at DEBUG, so at INFO
// (production's default) the probes leave no line and the requests do.
func TestAccessLogPrincipalAndProbes(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			logs := &hxLockedBuffer{}
			env := testenv.New(t, testenv.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level}))})
			const acct = "acct_accesslog"
			mk := env.Bootstrap(acct)
			httpc := &http.Client{Timeout: 10 * time.Second}
			send := func(method, path, token string, want int) {
				t.Helper()
				req := mustReq(t, method, env.Root+path)
				if token != "" {
					req.Header.Set("Authorization", "Bearer "+token)
				}
				if res, b := hxDo(t, httpc, req); res.StatusCode != want { //nolint:bodyclose // hxDo reads and closes the body
					t.Fatalf("%s %s: %d, want %d: %.200s", method, path, res.StatusCode, want, b)
				}
			}
			sb := mk[apikey.Sandbox]
			send("GET", "/healthz", "", 200)
			send("GET", "/readyz", "", 200)
			send("GET", "/v1/api-keys/"+sb.PublishableID, sb.Secret, 200)
			send("GET", "/v1/api-keys/"+sb.SecretID, "sk_test_"+strings.Repeat("A", 38), 401)
			jwt := env.JWT.Sign(t, env.JWT.Claims("ops@example.com", []string{acct}, []string{"account:api:key:read"}, "test"))
			send("GET", "/v1/audit-events?account_id="+acct, jwt, 403) // authenticated, not permitted: still named

			lines := accessLines(t, logs.String())
			for _, probe := range []string{"/healthz", "/readyz"} {
				got := lines[probe]
				switch {
				case level == slog.LevelInfo && len(got) != 0:
					t.Errorf("%s logged at INFO: %v", probe, got)
				case level == slog.LevelDebug && (len(got) != 1 || got[0]["level"] != "DEBUG"):
					t.Errorf("%s: %v, want one DEBUG line", probe, got)
				}
			}
			get := lines["/v1/api-keys/{id}"]
			if len(get) != 2 {
				t.Fatalf("%d lines for /v1/api-keys/{id}, want 2: %s", len(get), logs.String())
			}
			for _, rec := range get {
				if rec["level"] != "INFO" {
					t.Errorf("a request logged at %v, want INFO", rec["level"])
				}
				switch rec["status"] {
				case float64(200):
					if rec["key_id"] != sb.SecretID || rec["account_id"] != acct {
						t.Errorf("authenticated: key_id %v account_id %v, want %s %s", rec["key_id"], rec["account_id"], sb.SecretID, acct)
					}
				case float64(401):
					if _, ok := rec["key_id"]; ok {
						t.Errorf("failed authentication names a key: %v", rec)
					}
					if _, ok := rec["account_id"]; ok {
						t.Errorf("failed authentication names an account: %v", rec)
					}
				}
			}
			audit := lines["/v1/audit-events"]
			if len(audit) != 1 || audit[0]["account_id"] != acct || audit[0]["key_id"] != nil {
				t.Errorf("JWT request: %v, want account_id %s and no key_id", audit, acct)
			}
		})
	}
}

// TestBuildInfoMetric: the metrics listener's handler exports
// hsrcpay_build_info 1 labelled with this binary's build (the stamped
// version from make build is TestVersionFromMakeBuild's, in cmd).
func TestBuildInfoMetric(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	rec := httptest.NewRecorder()
	env.Server.MetricsHandler().ServeHTTP(rec, mustReq(t, "GET", "/metrics"))
	bi := buildinfo.Read()
	want := fmt.Sprintf(`hsrcpay_build_info{go_version=%q,revision=%q,version=%q} 1`, runtime.Version(), bi.Revision, bi.Version)
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
		t.Fatalf("/metrics: %d, lacks %s", rec.Code, want)
	}
	if strings.Count(rec.Body.String(), "hsrcpay_build_info{") != 1 {
		t.Errorf("more than one build_info series")
	}
}
