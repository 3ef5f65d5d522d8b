package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestHealthReadinessMetrics(t *testing.T) {
	env := testenv.New(t, testenv.Config{RateLimits: map[store.Mode]int{store.Live: 1000, store.Sandbox: 1}})
	m := env.Bootstrap(acct)[store.Sandbox]
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
	c.CreateAPIKey(ctx, acct, newKeyReq("limited", client.Permissions{}))         // 429
	env.Client("sk_test_"+strings.Repeat("A", 38)).RegenerateAPIKey(ctx, "key_x") // checksum
	_, body := get(t, env.Root+"/metrics")
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
