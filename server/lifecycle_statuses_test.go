package server_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// The statuses every lifecycle operation (and verify) documents alike — 401,
// 413 and 415 for those with a body, 429, 500 — each checked on every operation, with
// the envelope and the code the spec gives.
func TestLifecycleSharedStatuses(t *testing.T) {
	type op struct{ name, method, path, body string }
	// A well-formed key nobody holds: verify looks it up (a malformed one it would not).
	unknown, err := keys.New(keys.KindSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	ops := func(keyID string) []op {
		return []op{
			{"verifyApiKey", "POST", "/v1/api-keys/verify", `{"key":"` + unknown + `"}`},
			{"listApiKeys", "GET", "/v1/api-keys/?account_id=" + acct, ""},
			{"getApiKey", "GET", "/v1/api-keys/" + keyID, ""},
			{"updateApiKey", "PATCH", "/v1/api-keys/" + keyID, `{"metadata":{"k":"v"}}`},
			{"deleteApiKey", "DELETE", "/v1/api-keys/" + keyID, ""},
			{"listAuditEvents", "GET", "/v1/audit-events?account_id=" + acct, ""},
		}
	}
	send := func(t *testing.T, env *testenv.Env, o op, token, ctype, body string) (int, int) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, o.method, env.Root+o.path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		res, b := hxDo(t, http.DefaultClient, req) //nolint:bodyclose // hxDo reads and closes the body
		code, err := hxCheckEnvelope(res, b)
		if res.StatusCode >= 300 && err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: Cache-Control %q", o.name, res.Header.Get("Cache-Control"))
		}
		return res.StatusCode, code
	}
	want := func(t *testing.T, o op, gotStatus, gotCode, status int, code client.ErrorCode) {
		t.Helper()
		if gotStatus != status || gotCode != int(code) {
			t.Errorf("%s: %d/%d, want %d/%d", o.name, gotStatus, gotCode, status, code)
		}
	}

	t.Run("401 and 413/415", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{})
		m := env.Bootstrap(acct)[apikey.Sandbox]
		k := customKey(t, env, m, "shared", client.Permissions{}, nil)
		for _, o := range ops(k.ID) {
			st, code := send(t, env, o, "", "", "")
			want(t, o, st, code, 401, client.CodeMissingCredentials)
			st, code = send(t, env, o, "sk_test_notakey", "", "")
			want(t, o, st, code, 401, client.CodeInvalidCredentials)
			if o.body != "" {
				st, code = send(t, env, o, m.Secret, "text/plain", o.body)
				want(t, o, st, code, 415, client.CodeUnsupportedMediaType)
				st, code = send(t, env, o, m.Secret, "application/json", `{"name":"`+strings.Repeat("n", 70<<10)+`"}`)
				want(t, o, st, code, 413, client.CodeBodyTooLarge)
			}
		}
	})
	t.Run("429 over budget", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 2, apikey.Sandbox: 2}})
		m := env.Bootstrap(acct)[apikey.Sandbox]
		for _, o := range ops(m.PublishableID) {
			st, code := 0, 0
			for i := 0; i < 10 && st != 429; i++ {
				st, code = send(t, env, o, m.Secret, "application/json", o.body)
			}
			want(t, o, st, code, 429, client.CodeRateLimited)
		}
	})
	t.Run("500 store unavailable", func(t *testing.T) {
		inner, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		flaky := &hxFlakyStore{Store: inner}
		env := testenv.New(t, testenv.Config{Store: flaky})
		m := env.Bootstrap(acct)[apikey.Sandbox]
		k := customKey(t, env, m, "doomed store", client.Permissions{}, nil)
		// A JWT needs no store to authenticate, so the operation itself meets the outage.
		jwt := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{
			"account:api:key:read", "account:api:key:update", "account:api:key:delete", "account:audit:read", "account:api:key:verify"}, "test"))
		flaky.state.Store(hxDown)
		for _, o := range ops(k.ID) {
			st, code := send(t, env, o, jwt, "application/json", o.body)
			want(t, o, st, code, 500, client.CodeInternal)
		}
	})
}
