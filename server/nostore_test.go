package server_test

// Rule 8: a secret never leaves the response that carries it. Every /v1
// response — success, every error class, a store failure, a panic — carries
// Cache-Control: no-store, through the real server.

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

const (
	nsUp int32 = iota
	nsFail
	nsPanic
)

// nsStore fails or panics on the credential lookup while told to.
type nsStore struct {
	store.Store
	state atomic.Int32
}

func (s *nsStore) Repo(m apikey.Mode) store.Repository { return nsRepo{s.Store.Repo(m), s} }

type nsRepo struct {
	store.Repository
	s *nsStore
}

func (r nsRepo) KeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, error) {
	switch r.s.state.Load() {
	case nsFail:
		return nil, errors.New("ns: store unavailable (injected)")
	case nsPanic:
		panic("ns: injected panic in the store")
	}
	return r.Repository.KeyBySecretHash(ctx, hash)
}

func TestNoStoreOnEveryV1Response(t *testing.T) {
	inner, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &nsStore{Store: inner}
	// No credential cache: the failures are injected into the credential
	// lookup, which the cache would otherwise answer for a key already seen.
	env := testenv.New(t, testenv.Config{Store: st, NoCredentialCache: true})
	const acctN = "acct_nostore"
	m := env.Bootstrap(acctN)[apikey.Sandbox]
	// A second server whose sandbox budget is one request per second, for 429.
	limited := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1, apikey.Sandbox: 1}})
	lm := limited.Bootstrap(acctN)[apikey.Sandbox]

	httpc := &http.Client{Timeout: 10 * time.Second}
	create := "/v1/api-keys/?account_id=" + acctN
	regen := "/v1/api-keys/" + m.PublishableID + "/regenerate"
	secret := m.Secret
	jwtTok := env.JWT.Sign(t, env.JWT.Claims("ops@example.com", []string{acctN}, []string{"account:api:key:create", "account:api:key:update"}, "test"))
	type tc struct {
		what           string
		root           string
		method, path   string
		token, ctype   string
		body           string
		status         int
		before, after  func()
		secretInAnswer bool
	}
	cases := []tc{
		{what: "403 publishable", method: "POST", path: create, token: m.Publishable, ctype: "application/json", body: `{"name":"x","permissions":{}}`, status: 403},
		{what: "create", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"ns a","permissions":{}}`, status: 201, secretInAnswer: true},
		{what: "create by a JWT", method: "POST", path: create, token: jwtTok, ctype: "application/json", body: `{"name":"ns jwt","permissions":{}}`, status: 201, secretInAnswer: true},
		{what: "regenerate", method: "POST", path: regen, token: secret, status: 200, secretInAnswer: true},
		{what: "regenerate with grace", method: "POST", path: regen, token: secret, ctype: "application/json", body: `{"grace_period_minutes":5}`, status: 200, secretInAnswer: true},
		{what: "401 no token", method: "POST", path: create, ctype: "application/json", body: `{}`, status: 401},
		{what: "401 bad token", method: "POST", path: create, token: "sk_test_" + strings.Repeat("A", 38), ctype: "application/json", body: `{}`, status: 401},
		{what: "403 other account", method: "POST", path: "/v1/api-keys/?account_id=acct_elsewhere", token: secret, ctype: "application/json", body: `{"name":"x","permissions":{}}`, status: 403},
		{what: "400 validation", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"","permissions":{}}`, status: 400},
		{what: "400 malformed JSON", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":`, status: 400},
		{what: "400 unknown query parameter", method: "POST", path: create + "&x=1", token: secret, ctype: "application/json", body: `{"name":"x","permissions":{}}`, status: 400},
		{what: "404 unknown key", method: "POST", path: "/v1/api-keys/key_unknown0/regenerate", token: secret, status: 404},
		{what: "404 unknown route under /v1", method: "GET", path: "/v1/nope", token: secret, status: 404},
		{what: "404 /v1 itself", method: "GET", path: "/v1", status: 404},
		{what: "404 slash after regenerate", method: "POST", path: "/v1/api-keys/key_abc/regenerate/", token: secret, ctype: "application/json", body: `{}`, status: 404},
		{what: "405", method: "DELETE", path: "/v1/api-keys/", token: secret, status: 405},
		{what: "405 HEAD", method: "HEAD", path: "/v1/api-keys/", token: secret, status: 405},
		{what: "409 duplicate name", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"ns a","permissions":{}}`, status: 409},
		{what: "413", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"` + strings.Repeat("x", 70<<10) + `"}`, status: 413},
		{what: "415", method: "POST", path: create, token: secret, ctype: "text/plain", body: `{}`, status: 415},
		{what: "422 unknown permission", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"x","permissions":{"nuclear":["launch"]}}`, status: 422},
		{what: "422 not a managed key", method: "POST", path: "/v1/api-keys/KEYID/regenerate", token: secret, status: 422},
		{what: "429", root: limited.Root, method: "POST", path: create, token: lm.Secret, ctype: "application/json", body: `{"name":"x","permissions":{}}`, status: 429,
			before: func() { // spend the one-per-second budget first
				req, _ := http.NewRequestWithContext(ctx, "POST", limited.Root+create, strings.NewReader(`{"name":"spend","permissions":{}}`))
				req.Header.Set("Authorization", "Bearer "+lm.Secret)
				req.Header.Set("Content-Type", "application/json")
				hxDo(t, httpc, req) //nolint:bodyclose // hxDo reads and closes the body
			}},
		{what: "500 store failure", method: "POST", path: create, token: secret, ctype: "application/json", body: `{"name":"x","permissions":{}}`, status: 500,
			before: func() { st.state.Store(nsFail) }, after: func() { st.state.Store(nsUp) }},
		{what: "500 panic", method: "POST", path: regen, token: secret, status: 500,
			before: func() { st.state.Store(nsPanic) }, after: func() { st.state.Store(nsUp) }},
	}
	for _, c := range cases {
		if c.before != nil {
			c.before()
		}
		root := c.root
		if root == "" {
			root = env.Root
		}
		path := c.path
		if strings.Contains(path, "KEYID") { //nolint:staticcheck // S1017: customKeyID creates a key, so only when the path needs one
			path = strings.Replace(path, "KEYID", customKeyID(t, env, secret, acctN), 1)
		}
		req, err := http.NewRequestWithContext(ctx, c.method, root+path, strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		res, b := hxDo(t, httpc, req) //nolint:bodyclose // hxDo reads and closes the body
		if c.after != nil {
			c.after()
		}
		if res.StatusCode != c.status {
			t.Errorf("%s: status %d, want %d: %.200s", c.what, res.StatusCode, c.status, b)
		}
		if got := res.Header.Values("Cache-Control"); len(got) != 1 || got[0] != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want exactly no-store", c.what, res.StatusCode, got)
		}
		if c.method != "HEAD" && !json.Valid(b) {
			t.Errorf("%s: body is not JSON: %.200s", c.what, b)
		}
		if c.secretInAnswer {
			var e cfAPIKeyEnvelope
			if err := json.Unmarshal(b, &e); err != nil || e.Data.Key == "" {
				t.Errorf("%s: no secret in the answer: %.200s", c.what, b)
			}
		}
	}

	// Outside /v1: the public docs keep their own caching; the rest is no-store too.
	for _, p := range []string{"/openapi.json", "/openapi.yaml", "/docs"} {
		res, _ := hxDo(t, httpc, mustReq(t, "GET", env.Root+p)) //nolint:bodyclose // hxDo reads and closes the body
		if cc := res.Header.Get("Cache-Control"); res.StatusCode != 200 || cc == "" || cc == "no-store" {
			t.Errorf("%s: %d, Cache-Control %q: want 200 with the docs' own caching", p, res.StatusCode, cc)
		}
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/nope"} {
		res, _ := hxDo(t, httpc, mustReq(t, "GET", env.Root+p)) //nolint:bodyclose // hxDo reads and closes the body
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("%s (%d): Cache-Control %q, want no-store", p, res.StatusCode, cc)
		}
	}
}

// customKeyID creates a custom key (not managed) and returns its id.
func customKeyID(t *testing.T, env *testenv.Env, secret, account string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "POST", env.Root+"/v1/api-keys/?account_id="+account, strings.NewReader(`{"name":"ns custom","permissions":{}}`))
	req.Header.Set("Authorization", "Bearer "+secret)
	req.Header.Set("Content-Type", "application/json")
	res, b := hxDo(t, &http.Client{Timeout: 10 * time.Second}, req) //nolint:bodyclose // hxDo reads and closes the body
	var e cfAPIKeyEnvelope
	if err := json.Unmarshal(b, &e); err != nil || res.StatusCode != 201 {
		t.Fatalf("custom key: %d %.200s", res.StatusCode, b)
	}
	return e.Data.ID
}

func mustReq(t *testing.T, method, url string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
