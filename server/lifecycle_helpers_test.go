package server_test

// Helpers shared by the lifecycle operations' tests (one file per
// operation: list_api_keys_test.go, get_api_key_test.go, …). They drive the
// generated client (client/oapi via client.Client.Raw) and turn its answers
// into the client's typed errors.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// answer is the typed error of a non-2xx answer, nil otherwise.
func answer(hr *http.Response, body []byte) error {
	if hr.StatusCode < 300 {
		return nil
	}
	return client.ParseError(hr, body)
}

func getKey(t *testing.T, c *client.Client, id string) (*client.APIKeyView, error) {
	t.Helper()
	res, err := c.Raw().GetAPIKeyWithResponse(ctx, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, err
	}
	return clientData[client.APIKeyView](t, res.Body), nil
}

func updateKey(t *testing.T, c *client.Client, id string, body client.UpdateAPIKeyRequest) (*client.APIKeyView, error) {
	t.Helper()
	res, err := c.Raw().UpdateAPIKeyWithBodyWithResponse(ctx, id, "application/json", jsonReader(t, body))
	if err != nil {
		t.Fatalf("update %s: %v", id, err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, err
	}
	return clientData[client.APIKeyView](t, res.Body), nil
}

func deleteKey(t *testing.T, c *client.Client, id string) (*client.APIKeyView, error) {
	t.Helper()
	res, err := c.Raw().DeleteAPIKeyWithResponse(ctx, id)
	if err != nil {
		t.Fatalf("delete %s: %v", id, err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, err
	}
	return clientData[client.APIKeyView](t, res.Body), nil
}

func listPage(t *testing.T, c *client.Client, p oapi.ListAPIKeysParams) (*client.APIKeyPage, error) {
	t.Helper()
	res, err := c.Raw().ListAPIKeysWithResponse(ctx, &p)
	if err != nil {
		t.Fatalf("list: %v", err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, err
	}
	return clientData[client.APIKeyPage](t, res.Body), nil
}

// listAll follows next_cursor to the end and returns every key.
func listAll(t *testing.T, c *client.Client, p oapi.ListAPIKeysParams) []client.APIKeyView {
	t.Helper()
	var out []client.APIKeyView
	for {
		page, err := listPage(t, c, p)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			if page.NextCursor != nil {
				t.Fatal("last page with a next_cursor")
			}
			return out
		}
		p.Cursor = page.NextCursor
	}
}

func auditPage(t *testing.T, c *client.Client, p oapi.ListAuditEventsParams) (*client.AuditEventPage, error) {
	t.Helper()
	res, err := c.Raw().ListAuditEventsWithResponse(ctx, &p)
	if err != nil {
		t.Fatalf("audit: %v", err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, err
	}
	return clientData[client.AuditEventPage](t, res.Body), nil
}

// auditAll follows next_cursor to the end: every event, newest first.
func auditAll(t *testing.T, c *client.Client, account string) []client.AuditEvent {
	t.Helper()
	p := oapi.ListAuditEventsParams{AccountID: account}
	var out []client.AuditEvent
	for {
		page, err := auditPage(t, c, p)
		if err != nil {
			t.Fatalf("audit: %v", err)
		}
		out = append(out, page.Data...)
		if !page.HasMore {
			return out
		}
		p.Cursor = page.NextCursor
	}
}

func ptr[T any](v T) *T { return &v }

// fataler is what clientData and jsonReader need of a *testing.T or a *rapid.T.
type fataler interface {
	Helper()
	Fatalf(format string, args ...any)
}

// clientData decodes the data of a success answer of the raw client into the
// client package's type, as the client's own methods do.
func clientData[T any](t fataler, body []byte) *T {
	t.Helper()
	var env struct {
		Data T `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("decode %T: %v", env.Data, err)
	}
	return &env.Data
}

// jsonReader is v as a JSON body for the raw client's …WithBody methods.
func jsonReader(t fataler, v any) io.Reader {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("encode %T: %v", v, err)
	}
	return bytes.NewReader(b)
}

// customKey creates a custom key with perms by the account's managed secret.
func customKey(t *testing.T, env *testenv.Env, m testenv.Managed, name string, perms client.Permissions, exp *time.Time) *client.APIKey {
	t.Helper()
	req := newKeyReq(name, perms)
	req.ExpiresAt = exp
	return mustCreate(t, env.Client(m.Secret), req)
}

var sandbox = apikey.Sandbox

// createUnchecked creates req through the raw client, past the Go client's
// own checks of what the spec requires (client/check.go), so that a test
// sees what the server answers to a request those checks would refuse.
func createUnchecked(t fataler, c *client.Client, account string, req client.CreateAPIKeyRequest) (*client.APIKey, error) {
	t.Helper()
	res, err := c.Raw().CreateAPIKeyWithBody(ctx, &oapi.CreateAPIKeyParams{AccountID: account}, "application/json", jsonReader(t, req))
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode != http.StatusCreated {
		return nil, client.ParseError(res, body)
	}
	return clientData[client.APIKey](t, body), nil
}

// budgetLog is the server's rate limiter, logging every budget asked for.
type budgetLog struct {
	inner ratelimit.Limiter
	mu    sync.Mutex
	spent []string
}

func (l *budgetLog) Allow(ctx context.Context, key string, perSecond int) (ratelimit.Result, error) {
	l.mu.Lock()
	l.spent = append(l.spent, key)
	l.mu.Unlock()
	return l.inner.Allow(ctx, key, perSecond)
}

func (l *budgetLog) AllowRate(ctx context.Context, key string, r ratelimit.Rate) (ratelimit.Result, error) {
	l.mu.Lock()
	l.spent = append(l.spent, key)
	l.mu.Unlock()
	return l.inner.AllowRate(ctx, key, r)
}

// take returns the budgets spent since the last take.
func (l *budgetLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.spent
	l.spent = nil
	return out
}

// headerTap remembers the headers of the last answer it passed on.
type headerTap struct {
	mu   sync.Mutex
	last http.Header
}

func (t *headerTap) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		t.mu.Lock()
		t.last = res.Header.Clone()
		t.mu.Unlock()
	}
	return res, err
}

func (t *headerTap) get(name string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last.Get(name)
}

// rawExchange sends method env.URL+path as token (with an Idempotency-Key
// when idem is not ""; a JSON body when body is not nil) and returns the
// status, headers and body.
func rawExchange(t *testing.T, env *testenv.Env, method, path, token, idem string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, env.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if idem != "" {
		req.Header.Set("Idempotency-Key", idem)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, b
}
