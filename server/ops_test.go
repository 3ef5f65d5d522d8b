package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }() // read to its end below
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestHealthReadinessMetrics(t *testing.T) {
	env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 1}})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	if code, _ := get(t, env.Root+"/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get(t, env.Root+"/readyz"); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	c := env.Client(m.Secret)
	if _, err := c.CreateAPIKey(ctx, acct, newKeyReq("counted", client.Permissions{})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAPIKey(ctx, acct, newKeyReq("limited", client.Permissions{})); !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("over the budget: %v, want 429", err)
	}
	if _, err := env.Client("sk_test_"+strings.Repeat("A", 38)).RegenerateAPIKey(ctx, "key_x"); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("a bad checksum: %v, want 401", err)
	}
	ms := httptest.NewServer(env.Server.MetricsHandler())
	defer ms.Close()
	_, body := get(t, ms.URL+"/metrics")
	for _, want := range []string{
		`hsrcpay_http_requests_total{operation="createApiKey",status="201"} 1`,
		`hsrcpay_http_requests_total{operation="createApiKey",status="429"} 1`,
		`hsrcpay_http_requests_total{operation="regenerateApiKey",status="401"} 1`,
		`hsrcpay_auth_failures_total{reason="checksum"} 1`,
		`hsrcpay_rate_limited_total{budget="credential",mode="test"} 1`,
		`hsrcpay_http_request_duration_seconds_count{operation="createApiKey"} 2`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, m.Secret) {
		t.Fatal("a secret in /metrics")
	}
}

// TestMetricsNotOnAPIListener: the API's handler has no /metrics (rule 11);
// it answers like any unknown path outside /v1, with the 404 envelope, and
// counts nothing. The metrics handler serves /metrics and nothing else.
func TestMetricsNotOnAPIListener(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	type envelope struct {
		Success bool `json:"success"`
		Error   struct {
			Code    int            `json:"code"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	answer := func(path string) (int, envelope, string) {
		code, body := get(t, env.Root+path)
		var e envelope
		if err := json.Unmarshal([]byte(body), &e); err != nil {
			t.Fatalf("%s: not JSON: %.200s", path, body)
		}
		return code, e, body
	}
	wantCode, want, _ := answer("/nope")
	for _, p := range []string{"/metrics", "/metrics/", "/metrics?format=text"} {
		code, got, body := answer(p)
		if code != wantCode || got.Success || got.Error.Code != want.Error.Code || got.Error.Details["request_id"] == nil {
			t.Errorf("%s on the API: %d %.200s; want what /nope gets (%d, code %d)", p, code, body, wantCode, want.Error.Code)
		}
		if strings.Contains(body, "hsrcpay_") || strings.Contains(body, "go_goroutines") {
			t.Errorf("%s on the API shows metrics: %.200s", p, body)
		}
	}
	ms := httptest.NewServer(env.Server.MetricsHandler())
	defer ms.Close()
	if code, body := get(t, ms.URL+"/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics handler: %d %.200s", code, body)
	}
	for _, p := range []string{"/", "/v1/api-keys/", "/healthz"} {
		if code, _ := get(t, ms.URL+p); code != 404 {
			t.Errorf("metrics handler %s: %d, want 404", p, code)
		}
	}
	// Unknown paths outside /v1 are not counted as API requests.
	if _, body := get(t, ms.URL+"/metrics"); strings.Contains(body, "hsrcpay_http_requests_total") {
		t.Errorf("requests outside /v1 were counted:\n%s", body)
	}
}
