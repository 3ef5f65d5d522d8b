package server_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// works reports whether secret authenticates: a 404 for an unknown id proves
// it did, and so does 40304 (a replaced secret in its grace period, which
// authenticates but manages nothing).
func works(t *testing.T, env *testenv.Env, secret string) bool {
	t.Helper()
	_, err := env.Client(secret).RegenerateAPIKey(ctx, "key_probe")
	var ae *client.Error
	if !asAPIError(err, &ae) {
		t.Fatalf("probe: %v", err)
	}
	switch {
	case ae.StatusCode == 404, ae.Code == client.CodeReplacedSecret:
		return true
	case ae.StatusCode == 401:
		return false
	}
	t.Fatalf("probe: unexpected %d %s", ae.StatusCode, ae.Message)
	return false
}

func TestZeroDowntimeRotation(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	c := env.Client(m.Secret)

	first := m.Secret
	k, err := c.RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	second := k.Key
	if k.PreviousKeyExpiresAt == nil || k.PreviousKeyExpiresAt.Sub(env.Clock.Now()) < 59*time.Minute || k.PreviousKeyExpiresAt.Sub(env.Clock.Now()) > time.Hour {
		t.Fatalf("previous_key_expires_at = %v", k.PreviousKeyExpiresAt)
	}
	if !works(t, env, first) || !works(t, env, second) {
		t.Fatal("both secrets should work during the grace period")
	}
	// A second rotation with its own grace ends the first secret's at once.
	k, err = env.Client(second).RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(30*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	third := k.Key
	if works(t, env, first) {
		t.Fatal("first secret survived a second rotation")
	}
	if !works(t, env, second) || !works(t, env, third) {
		t.Fatal("second (in grace) and third (current) should work")
	}
	// The grace period ends on time.
	env.Clock.Advance(31 * time.Minute)
	if works(t, env, second) || !works(t, env, third) {
		t.Fatal("after the grace period only the current secret works")
	}
	// A rotation without grace ends any grace at once.
	k, err = env.Client(third).RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	fourth := k.Key
	k, err = env.Client(fourth).RegenerateAPIKey(ctx, m.SecretID)
	if err != nil {
		t.Fatal(err)
	}
	if k.PreviousKeyExpiresAt != nil || works(t, env, third) || works(t, env, fourth) || !works(t, env, k.Key) {
		t.Fatal("a rotation without grace must leave only the new secret")
	}
}

func TestGraceNeverOutlivesExpiry(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	exp := env.Clock.Now().Add(10 * time.Minute).UTC()
	if _, err := store.UpdateKey(ctx, env.Store.Repo(apikey.Sandbox), m.PublishableID, func(k *apikey.Key) error {
		k.ExpiresAt = &exp
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	k, err := env.Client(m.Secret).RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if k.PreviousKeyExpiresAt == nil || !k.PreviousKeyExpiresAt.Equal(exp.Truncate(time.Microsecond)) && !k.PreviousKeyExpiresAt.Equal(exp) {
		t.Fatalf("previous_key_expires_at = %v, want the key's expiry %v", k.PreviousKeyExpiresAt, exp)
	}
}

func TestRegenerateBodyValidation(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	c := env.Client(m.Secret)
	// The client refuses what the API cannot take before sending; the raw
	// generated client sends it, and the server refuses it too.
	if _, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(8*24*time.Hour)); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("client-side refusal: %v", err)
	}
	g := 8 * 24 * 60
	res, err := c.Raw().RegenerateAPIKeyWithResponse(ctx, m.PublishableID, nil, oapi.RegenerateAPIKeyRequest{GracePeriodMinutes: &g})
	if err != nil {
		t.Fatal(err)
	}
	ae := requireAPIError(t, client.ParseError(res.HTTPResponse, res.Body), 400, client.CodeValidationFailed)
	if len(ae.Fields) == 0 || ae.Fields[0].Field != "/grace_period_minutes" {
		t.Fatalf("fields %+v", ae.Fields)
	}
	for body, want := range map[string]int{
		`{"grace_period_minutes":-1}`:  400,
		`{"grace_period_minutes":1.5}`: 400,
		`{"grace":5}`:                  400,
		`[]`:                           400,
		`{}`:                           200,
		``:                             200,
	} {
		req, _ := http.NewRequestWithContext(ctx, "POST", env.URL+"/api-keys/"+m.PublishableID+"/regenerate", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+m.Secret)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close() // only the status matters
		if res.StatusCode != want {
			t.Errorf("body %q: status %d, want %d", body, res.StatusCode, want)
		}
	}
}

// Regenerate authorizes before it tells a key's state (issue 17): a caller
// without power over a custom key, a switched-off managed key or a deleted
// one gets 40302 (without details.missing when it may not read keys), not
// 42201, 40901 or 404; a caller with power gets those.
func TestRegenerateAuthorizesFirst(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		admin := env.Client(m.Secret)
		weak := customKey(t, env, m, "weak", client.Permissions{"account:api:key": {"update"}}, nil)
		custom := customKey(t, env, m, "custom", client.Permissions{"refund": {"create"}}, nil)
		if _, err := updateKey(t, admin, m.PublishableID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
		gone := customKey(t, env, m, "gone", client.Permissions{"refund": {"create"}}, nil)
		if _, err := deleteKey(t, admin, gone.ID); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name   string
			id     string
			status int
			code   client.ErrorCode
		}{
			{"custom", custom.ID, 422, client.CodeKeyNotManaged},
			{"switched off", m.PublishableID, 409, client.CodeKeyNotActive},
			{"deleted", gone.ID, 404, client.CodeKeyNotFound},
		} {
			_, err := env.Client(weak.Key).RegenerateAPIKey(ctx, tc.id)
			if ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation); ae.Details["missing"] != nil {
				t.Fatalf("%s: a non-reader is told the key's permissions: %v", tc.name, ae.Details)
			}
			_, err = admin.RegenerateAPIKey(ctx, tc.id)
			wantAPIError(t, err, tc.status, tc.code)
		}
	})
}
