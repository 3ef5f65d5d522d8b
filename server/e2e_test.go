package server_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

var ctx = context.Background()

const acct = "acct_main"

// wantAPIError asserts err is a *client.Error with the status and code, and
// a request id.
func wantAPIError(t *testing.T, err error, status int, code client.ErrorCode) {
	t.Helper()
	_ = requireAPIError(t, err, status, code)
}

// requireAPIError is wantAPIError that also returns the error, for the checks
// of its details.
func requireAPIError(t *testing.T, err error, status int, code client.ErrorCode) *client.Error {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want API error %d/%d, got %v", status, code, err)
	}
	if ae.StatusCode != status || ae.Code != code {
		t.Fatalf("want %d/%d, got %d/%d: %s (details %v)", status, code, ae.StatusCode, ae.Code, ae.Message, ae.Details)
	}
	if ae.RequestID == "" || !strings.HasPrefix(ae.RequestID, "req_") {
		t.Fatalf("error has no request id: %+v", ae)
	}
	return ae
}

func newKeyReq(name string, perms client.Permissions) client.CreateAPIKeyRequest {
	return client.CreateAPIKeyRequest{Name: name, Permissions: perms}
}

func TestCreateIssuesWorkingCustomKey(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	meta := client.Metadata{"team": "checkout"}
	k, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{
		Name:        "Checkout backend",
		Permissions: client.Permissions{"account:api:key": {"create"}, "payment": {"create", "read"}},
		ExpiresAt:   &exp,
		Metadata:    &meta,
	})
	if err != nil {
		t.Fatal(err)
	}
	if k.AccountID != acct || k.Type != client.TypeSecret || k.Status != client.StatusActive || k.Managed || k.Deleted {
		t.Fatalf("unexpected key: %+v", k)
	}
	if !strings.HasPrefix(k.Key, "sk_test_") || keys.Classify(k.Key) != keys.KindSecret {
		t.Fatalf("want a sandbox secret key, got %q", k.Key)
	}
	if _, err := keys.Parse(k.Key); err != nil {
		t.Fatalf("issued key fails its own checksum: %v", err)
	}
	if k.ExpiresAt == nil || !k.ExpiresAt.Equal(exp) || k.Metadata["team"] != "checkout" || k.LastUsedAt != nil {
		t.Fatalf("fields not round-tripped: %+v", k)
	}
	// The new key authenticates, and holds exactly what it was given.
	childReq := newKeyReq("child", client.Permissions{"payment": {"read"}})
	childReq.ExpiresAt = &exp // a key that expires creates keys that expire no later (42203 otherwise)
	k2, err := env.Client(k.Key).CreateAPIKey(ctx, acct, childReq)
	if err != nil {
		t.Fatalf("new key cannot create within its permissions: %v", err)
	}
	_, err = env.Client(k.Key).CreateAPIKey(ctx, acct, newKeyReq("grandchild", client.Permissions{"refund": {"create"}}))
	ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation)
	if !errors.Is(err, client.ErrForbidden) {
		t.Fatal("errors.Is(ErrForbidden) should hold for 403")
	}
	if got := ae.Details["missing"]; got == nil || !strings.Contains(strings.Join(toStrings(got), ","), "refund:create") {
		t.Fatalf("details.missing = %v", got)
	}
	// A key without account:api:key:create cannot create at all.
	_, err = env.Client(k2.Key).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
	wantAPIError(t, err, 403, client.CodePermissionDenied)
}

func toStrings(v any) []string {
	var out []string
	if l, ok := v.([]any); ok {
		for _, x := range l {
			s, _ := x.(string)
			out = append(out, s)
		}
	}
	return out
}

func TestCreateErrors(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	env.Bootstrap("acct_other")
	c := env.Client(m.Secret)
	past := time.Now().Add(-time.Hour)
	for _, tc := range []struct {
		name    string
		account string
		req     client.CreateAPIKeyRequest
		status  int
		code    client.ErrorCode
		kind    error
	}{
		{"empty name", acct, newKeyReq("", client.Permissions{}), 400, client.CodeValidationFailed, client.ErrInvalidRequest},
		{"control characters in name", acct, newKeyReq("bad\x00name", client.Permissions{}), 400, client.CodeValidationFailed, client.ErrInvalidRequest},
		{"name too long", acct, newKeyReq(strings.Repeat("n", 101), client.Permissions{}), 400, client.CodeValidationFailed, client.ErrInvalidRequest},
		{"bad account id", "acct with spaces", newKeyReq("x", client.Permissions{}), 400, client.CodeValidationFailed, client.ErrInvalidRequest},
		{"foreign account", "acct_other", newKeyReq("x", client.Permissions{}), 403, client.CodeAccountForbidden, client.ErrForbidden},
		{"unknown resource", acct, newKeyReq("x", client.Permissions{"nuclear": {"launch"}}), 422, client.CodeUnknownPermission, client.ErrUnprocessable},
		{"unknown action", acct, newKeyReq("x", client.Permissions{"payment": {"explode"}}), 422, client.CodeUnknownPermission, client.ErrUnprocessable},
		{"expiry in the past", acct, client.CreateAPIKeyRequest{Name: "x", Permissions: client.Permissions{}, ExpiresAt: &past}, 422, client.CodeInvalidExpiry, client.ErrUnprocessable},
		{"duplicate of a managed key's name", acct, newKeyReq("Managed secret key", client.Permissions{}), 409, client.CodeDuplicateName, client.ErrConflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := createUnchecked(t, c, tc.account, tc.req)
			wantAPIError(t, err, tc.status, tc.code)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("errors.Is(%v) is false for %v", tc.kind, err)
			}
		})
	}
	// Metadata keys longer than 40 characters are a field error.
	long := client.Metadata{strings.Repeat("k", 41): "v"}
	_, err := c.CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "meta", Permissions: client.Permissions{}, Metadata: &long})
	ae := requireAPIError(t, err, 400, client.CodeValidationFailed)
	if len(ae.Fields) != 1 || ae.Fields[0].Field != "/metadata" {
		t.Fatalf("fields = %+v", ae.Fields)
	}
	// Names are unique among active keys: the second create conflicts.
	if _, err := c.CreateAPIKey(ctx, acct, newKeyReq("dup", client.Permissions{})); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateAPIKey(ctx, acct, newKeyReq("dup", client.Permissions{}))
	wantAPIError(t, err, 409, client.CodeDuplicateName)
}

func TestAccountNotFoundThroughJWT(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	env.Bootstrap(acct)
	tok := env.JWT.Sign(t, env.JWT.Claims("ops@example.com", []string{"acct_ghost"}, []string{"account:api:key:create"}, "test"))
	_, err := env.Client(tok).CreateAPIKey(ctx, "acct_ghost", newKeyReq("x", client.Permissions{}))
	wantAPIError(t, err, 404, client.CodeAccountNotFound)
	if !errors.Is(err, client.ErrNotFound) {
		t.Fatal("want ErrNotFound")
	}
}

func TestRegenerateRotatesManagedSecret(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Live]
	old := env.Client(m.Secret)
	// Use the key once so last_used_* has something to show.
	if _, err := old.CreateAPIKey(ctx, acct, newKeyReq("before rotation", client.Permissions{})); err != nil {
		t.Fatal(err)
	}
	env.FlushUsage()
	k, err := old.RegenerateAPIKey(ctx, m.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	if k.ID != m.SecretID || !k.Managed || k.Key == m.Secret || !strings.HasPrefix(k.Key, "sk_live_") {
		t.Fatalf("regenerate: %+v", k)
	}
	if k.LastUsedAt == nil || k.LastUsedIP == nil || *k.LastUsedIP != "127.0.0.1" {
		t.Fatalf("last_used_* not kept: at=%v ip=%v", k.LastUsedAt, k.LastUsedIP)
	}
	if !k.UpdatedAt.After(k.CreatedAt) {
		t.Fatalf("updated_at %v not after created_at %v", k.UpdatedAt, k.CreatedAt)
	}
	// The old secret stops working at once; the new one works.
	_, err = old.RegenerateAPIKey(ctx, m.SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
	if !errors.Is(err, client.ErrUnauthorized) {
		t.Fatal("want ErrUnauthorized")
	}
	if _, err := env.Client(k.Key).CreateAPIKey(ctx, acct, newKeyReq("after rotation", client.Permissions{})); err != nil {
		t.Fatalf("new secret rejected: %v", err)
	}
	// The managed publishable key rotates too; the new one authenticates
	// (and, being publishable, is refused key management with 403, not 401).
	pk, err := env.Client(k.Key).RegenerateAPIKey(ctx, m.PublishableID)
	if err != nil {
		t.Fatal(err)
	}
	if pk.Type != client.TypePublishable || !strings.HasPrefix(pk.Key, "pk_live_") {
		t.Fatalf("publishable regenerate: %+v", pk)
	}
	_, err = env.Client(pk.Key).RegenerateAPIKey(ctx, m.PublishableID)
	wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
	_, err = env.Client(m.Publishable).RegenerateAPIKey(ctx, m.PublishableID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
}

func TestRegenerateErrors(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	mk := env.Bootstrap(acct)
	other := env.Bootstrap("acct_other")
	sb := env.Client(mk[apikey.Sandbox].Secret)
	custom, err := sb.CreateAPIKey(ctx, acct, newKeyReq("custom", client.Permissions{"account:api:key": {"create"}}))
	if err != nil {
		t.Fatal(err)
	}
	// 422: custom keys are not regenerated, and stay unchanged.
	_, err = sb.RegenerateAPIKey(ctx, custom.ID)
	wantAPIError(t, err, 422, client.CodeKeyNotManaged)
	if _, err := env.Client(custom.Key).CreateAPIKey(ctx, acct, newKeyReq("still works", client.Permissions{})); err != nil {
		t.Fatalf("custom key changed by a refused regenerate: %v", err)
	}
	// 403: a key without account:api:key:update.
	_, err = env.Client(custom.Key).RegenerateAPIKey(ctx, mk[apikey.Sandbox].SecretID)
	wantAPIError(t, err, 403, client.CodePermissionDenied)
	// 403: publishable keys never manage keys.
	_, err = env.Client(mk[apikey.Sandbox].Publishable).RegenerateAPIKey(ctx, mk[apikey.Sandbox].PublishableID)
	wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
	// 404: unknown id, another account's key, and a live key from the sandbox.
	for name, id := range map[string]string{
		"unknown":       "key_doesnotexist",
		"other account": other[apikey.Sandbox].SecretID,
		"other mode":    mk[apikey.Live].SecretID,
	} {
		_, err = sb.RegenerateAPIKey(ctx, id)
		wantAPIError(t, err, 404, client.CodeKeyNotFound)
		_ = name
	}
	// The other account's key still works: nothing was rotated.
	if _, err := env.Client(other[apikey.Sandbox].Secret).RegenerateAPIKey(ctx, other[apikey.Sandbox].PublishableID); err != nil {
		t.Fatalf("other account's key was disturbed: %v", err)
	}
	// 400: malformed ids.
	for _, id := range []string{"nope", "key_", "key_" + strings.Repeat("a", 61), "key_abc-def"} {
		_, err = sb.RegenerateAPIKey(ctx, id)
		ae := requireAPIError(t, err, 400, client.CodeValidationFailed)
		if len(ae.Fields) == 0 || ae.Fields[0].Location != "path" || ae.Fields[0].Field != "id" {
			t.Fatalf("id %q: fields %+v", id, ae.Fields)
		}
	}
	// 409: an inactive managed key.
	if _, err := store.UpdateKey(ctx, env.Store.Repo(apikey.Sandbox), mk[apikey.Sandbox].PublishableID, func(k *apikey.Key) error {
		k.Status = apikey.StatusInactive
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = sb.RegenerateAPIKey(ctx, mk[apikey.Sandbox].PublishableID)
	ae := requireAPIError(t, err, 409, client.CodeKeyNotActive)
	if ae.Details["status"] != "INACTIVE" {
		t.Fatalf("details = %v", ae.Details)
	}
	// A deleted key is not found, and its secret no longer authenticates.
	if _, err := store.UpdateKey(ctx, env.Store.Repo(apikey.Sandbox), mk[apikey.Sandbox].SecretID, func(k *apikey.Key) error {
		k.Deleted = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	_, err = sb.RegenerateAPIKey(ctx, mk[apikey.Sandbox].SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
	_, err = env.Client(mk[apikey.Live].Secret).RegenerateAPIKey(ctx, mk[apikey.Sandbox].SecretID)
	wantAPIError(t, err, 404, client.CodeKeyNotFound)
}

func TestRateLimited(t *testing.T) {
	env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 2}})
	m := env.Bootstrap(acct)
	c := env.Client(m[apikey.Sandbox].Secret)
	var err error
	for i := 0; i < 3 && err == nil; i++ {
		_, err = c.RegenerateAPIKey(ctx, "key_unknown0"+string(rune('a'+i)))
		if errors.Is(err, client.ErrNotFound) {
			err = nil
		}
	}
	ae := requireAPIError(t, err, 429, client.CodeRateLimited)
	if ae.RetryAfter < time.Second || !errors.Is(err, client.ErrRateLimited) {
		t.Fatalf("retry after %v", ae.RetryAfter)
	}
	_, err = c.CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
	wantAPIError(t, err, 429, client.CodeRateLimited)
	// Budgets are per credential and per mode: the live key is unaffected.
	if _, err := env.Client(m[apikey.Live].Secret).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{})); err != nil {
		t.Fatalf("live key limited by sandbox traffic: %v", err)
	}
	// A client that retries honours Retry-After and gets through.
	retrying, err := client.New(env.URL, m[apikey.Sandbox].Secret, client.WithRetries(3, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := retrying.CreateAPIKey(ctx, acct, newKeyReq("after wait", client.Permissions{})); err != nil {
		t.Fatalf("retrying client: %v", err)
	}
}

func TestStoreFailureIs500(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	if err := env.Store.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
	wantAPIError(t, err, 500, client.CodeInternal)
	if !errors.Is(err, client.ErrServer) {
		t.Fatal("want ErrServer")
	}
	_, err = env.Client(m.Secret).RegenerateAPIKey(ctx, m.SecretID)
	wantAPIError(t, err, 500, client.CodeInternal)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.Root+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close() // only the status matters
	if res.StatusCode != 503 {
		t.Fatalf("readyz with a closed store: %d", res.StatusCode)
	}
}

func TestExpiredKeyIs401(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	exp := time.Now().Add(time.Hour)
	k, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "short-lived", Permissions: client.Permissions{"account:api:key": {"create"}}, ExpiresAt: &exp})
	if err != nil {
		t.Fatal(err)
	}
	child := newKeyReq("child", client.Permissions{})
	child.ExpiresAt = &exp
	if _, err := env.Client(k.Key).CreateAPIKey(ctx, acct, child); err != nil {
		t.Fatal(err)
	}
	env.Clock.Advance(2 * time.Hour)
	child.Name = "child2"
	_, err = env.Client(k.Key).CreateAPIKey(ctx, acct, child)
	wantAPIError(t, err, 401, client.CodeExpiredCredentials)
}

// TestNoPlaintextSecretAtRest scans the database files (WAL included) for
// every secret the server handed out.
func TestNoPlaintextSecretAtRest(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	var secrets []string
	for _, m := range env.Bootstrap(acct) {
		secrets = append(secrets, m.Secret, m.Publishable)
	}
	m := env.Bootstrap("acct_two")[apikey.Live]
	secrets = append(secrets, m.Secret, m.Publishable)
	c := env.Client(m.Secret)
	for i := 0; i < 5; i++ {
		k, err := c.CreateAPIKey(ctx, "acct_two", newKeyReq("k"+string(rune('a'+i)), client.Permissions{"payment": {"read"}}))
		if err != nil {
			t.Fatal(err)
		}
		secrets = append(secrets, k.Key)
	}
	r, err := c.RegenerateAPIKey(ctx, m.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, r.Key)
	// The lifecycle writes keys and audit events again: none may hold a secret.
	c = env.Client(r.Key)
	k, err := c.CreateAPIKey(ctx, "acct_two", newKeyReq("lifecycle", client.Permissions{}))
	if err != nil {
		t.Fatal(err)
	}
	secrets = append(secrets, k.Key)
	if _, err := updateKey(t, c, k.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed"), Status: ptr(client.UpdateStatusInactive)}); err != nil {
		t.Fatal(err)
	}
	if _, err := deleteKey(t, c, k.ID); err != nil {
		t.Fatal(err)
	}
	env.FlushUsage()
	files := env.SQLiteFiles()
	if len(files) < 2 {
		t.Fatalf("expected database files, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f) //nolint:gosec // the test server's own SQLite files
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			// The random part alone must not appear either.
			if bytes.Contains(data, []byte(s)) || bytes.Contains(data, []byte(s[8:40])) {
				t.Fatalf("plaintext secret found in %s", f)
			}
		}
	}
}

func TestCrossModeIsolation(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	mk := env.Bootstrap(acct)
	// A key created in the sandbox is a sandbox key and unknown to live.
	k, err := env.Client(mk[apikey.Sandbox].Secret).CreateAPIKey(ctx, acct, newKeyReq("sandbox only", client.Permissions{}))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(k.Key, "sk_test_") {
		t.Fatalf("sandbox create issued %q", k.Key)
	}
	if _, err := env.Store.Repo(apikey.Live).GetKey(ctx, k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("sandbox key visible in live repository: %v", err)
	}
	// The same name is free in live: the repositories are separate.
	if _, err := env.Client(mk[apikey.Live].Secret).CreateAPIKey(ctx, acct, newKeyReq("sandbox only", client.Permissions{})); err != nil {
		t.Fatalf("live create with a sandbox name: %v", err)
	}
	// A live secret rewritten as a sandbox one fails its checksum; one with a
	// valid checksum for the other mode is unknown there.
	forged := strings.Replace(mk[apikey.Live].Secret, "_live_", "_test_", 1)
	_, err = env.Client(forged).RegenerateAPIKey(ctx, mk[apikey.Live].SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
}

func TestRawHTTPErrorsUseEnvelope(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	auth := "Bearer " + m.Secret
	create := "/v1/api-keys/?account_id=" + acct
	valid := `{"name":"n","permissions":{}}`
	for _, tc := range []struct {
		name, method, path, ctype, body, auth string
		status                                int
		code                                  client.ErrorCode
	}{
		{"malformed JSON", "POST", create, "application/json", `{"name":`, auth, 400, client.CodeMalformedBody},
		{"not JSON", "POST", create, "application/json", `<html>`, auth, 400, client.CodeMalformedBody},
		{"invalid UTF-8", "POST", create, "application/json", "{\"name\":\"\xff\xfe\",\"permissions\":{}}", auth, 400, client.CodeMalformedBody},
		{"empty body", "POST", create, "application/json", ``, auth, 400, client.CodeValidationFailed},
		{"unknown field", "POST", create, "application/json", `{"name":"n","permissions":{},"admin":true}`, auth, 400, client.CodeValidationFailed},
		{"case-variant duplicate key", "POST", create, "application/json", `{"name":"n","NAME":"m","permissions":{}}`, auth, 400, client.CodeValidationFailed},
		{"wrong type", "POST", create, "application/json", `{"name":5,"permissions":[]}`, auth, 400, client.CodeValidationFailed},
		{"huge number", "POST", create, "application/json", `{"name":1e999999,"permissions":{}}`, auth, 400, client.CodeValidationFailed},
		{"deep nesting", "POST", create, "application/json", `{"name":"n","permissions":{"a":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}}`, auth, 400, client.CodeMalformedBody},
		{"missing account_id", "POST", "/v1/api-keys/", "application/json", valid, auth, 400, client.CodeValidationFailed},
		{"repeated account_id", "POST", create + "&account_id=" + acct, "application/json", valid, auth, 400, client.CodeValidationFailed},
		{"unknown query parameter", "POST", create + "&debug=1", "application/json", valid, auth, 400, client.CodeValidationFailed},
		{"text/plain", "POST", create, "text/plain", valid, auth, 415, client.CodeUnsupportedMediaType},
		{"no content type", "POST", create, "", valid, auth, 415, client.CodeUnsupportedMediaType},
		{"body over 64 KiB", "POST", create, "application/json", `{"name":"` + strings.Repeat("a", 70000) + `"}`, auth, 413, client.CodeBodyTooLarge},
		{"slash after regenerate", "POST", "/v1/api-keys/key_abc/regenerate/", "application/json", `{}`, auth, 404, client.CodeRouteNotFound},
		{"unknown route", "GET", "/v1/nope", "", "", auth, 404, client.CodeRouteNotFound},
		{"outside /v1", "GET", "/admin", "", "", auth, 404, client.CodeRouteNotFound},
		{"wrong method", "PUT", "/v1/api-keys/", "", "", auth, 405, client.CodeMethodNotAllowed},
		{"no token", "POST", create, "application/json", valid, "", 401, client.CodeMissingCredentials},
		{"Bearer alone", "POST", create, "application/json", valid, "Bearer", 401, client.CodeInvalidCredentials},
		{"Bearer and spaces", "POST", create, "application/json", valid, "Bearer    ", 401, client.CodeInvalidCredentials},
		{"Basic scheme", "POST", create, "application/json", valid, "Basic dXNlcjpwYXNz", 401, client.CodeInvalidCredentials},
		{"key without scheme", "POST", create, "application/json", valid, m.Secret, 401, client.CodeInvalidCredentials},
		{"token too long", "POST", create, "application/json", valid, "Bearer sk_" + strings.Repeat("a", 5000), 401, client.CodeInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(ctx, tc.method, env.Root+tc.path, strings.NewReader(tc.body))
			if tc.ctype != "" {
				req.Header.Set("Content-Type", tc.ctype)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			_ = res.Body.Close() // read to its end
			if res.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tc.status, body)
			}
			if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Fatalf("content type %q: %s", ct, body)
			}
			ae, ok := parseEnvelope(res, body)
			if !ok || ae.Code != tc.code || ae.RequestID != res.Header.Get("X-Request-Id") {
				t.Fatalf("envelope %+v (ok=%v), want code %d: %s", ae, ok, tc.code, body)
			}
			if tc.status == 401 && res.Header.Get("WWW-Authenticate") == "" {
				t.Fatal("401 without WWW-Authenticate")
			}
		})
	}
	// None of the above stored anything: only the two managed keys exist.
	var n int
	if err := env.Store.(*sqlite.Store).DB(apikey.Sandbox).QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("sandbox holds %d keys (err %v), want the 2 managed ones", n, err)
	}
}

func parseEnvelope(res *http.Response, body []byte) (*client.Error, bool) {
	var ae *client.Error
	err := client.ParseError(res, body)
	if errors.As(err, &ae) && ae.Code != 0 {
		return ae, true
	}
	return nil, false
}

func asAPIError(err error, target **client.Error) bool { return errors.As(err, target) }

// The collection paths answer with or without their trailing slash; the
// published forms stay /api-keys/ and /audit-events.
func TestPathAliases(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	for _, c := range []struct {
		method, path, body string
		status             int
	}{
		{"POST", "/v1/api-keys?account_id=" + acct, `{"name":"no slash","permissions":{}}`, 201},
		{"GET", "/v1/api-keys?account_id=" + acct, "", 200},
		{"GET", "/v1/audit-events/?account_id=" + acct, "", 200},
		{"GET", "/v1/audit-events?account_id=" + acct, "", 200},
		{"GET", "/v1/api-keys//?account_id=" + acct, "", 404},
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, env.Root+c.path, strings.NewReader(c.body))
		req.Header.Set("Authorization", "Bearer "+m.Secret)
		if c.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, b := hxDo(t, http.DefaultClient, req) //nolint:bodyclose // hxDo reads and closes the body
		if res.StatusCode != c.status {
			t.Errorf("%s %s: %d, want %d: %.200s", c.method, c.path, res.StatusCode, c.status, b)
		}
	}
}
