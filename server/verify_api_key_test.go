package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// verifyKey asks the API through the generated client whether key works
// (and holds perms, when given). It returns the verdict, the verdict's raw
// JSON (to compare answers byte for byte), or the request's error.
func verifyKey(t *testing.T, c *client.Client, key string, perms oapi.Permissions) (*oapi.VerifyAPIKeyResult, string, error) {
	t.Helper()
	body := oapi.VerifyAPIKeyRequest{Key: key}
	if perms != nil {
		body.Permissions = &perms
	}
	res, err := c.Raw().VerifyAPIKeyWithResponse(ctx, body)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if err := answer(res.HTTPResponse, res.Body); err != nil {
		return nil, "", err
	}
	var raw struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(res.Body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{`"key":`, key} {
		if strings.Contains(string(res.Body), k) {
			t.Fatalf("the verdict holds %q: %s", k, res.Body)
		}
	}
	return &res.JSON200.Data, string(raw.Data), nil
}

// wantVerdict checks a verdict's code and validity, and that the key's
// details are there exactly when the key was found.
func wantVerdict(t *testing.T, v *oapi.VerifyAPIKeyResult, err error, code oapi.VerifyCode, keyID string) {
	t.Helper()
	if err != nil {
		t.Fatalf("want a %s verdict, got %v", code, err)
	}
	if v.Code != code || v.Valid != (code == oapi.VerifyValid) {
		t.Fatalf("verdict %s (valid %v), want %s", v.Code, v.Valid, code)
	}
	if keyID == "" {
		if v.ID != nil || v.AccountID != nil || v.Permissions != nil || v.Mode != nil || v.Type != nil || v.Managed != nil || v.InGracePeriod != nil {
			t.Fatalf("a %s verdict shows a key: %+v", code, v)
		}
		return
	}
	if v.ID == nil || *v.ID != keyID || v.AccountID == nil || v.Mode == nil || v.Type == nil || v.Managed == nil || v.Permissions == nil || v.InGracePeriod == nil {
		t.Fatalf("a %s verdict lacks the key's details: %+v", code, v)
	}
}

// notFound is the one answer for every key the caller may not know about.
const notFound = `{"code":"NOT_FOUND","expires_at":null,"grace_period_ends_at":null,"valid":false}`

// POST /api-keys/verify: a subtest per documented status and per verdict.
func TestVerifyAPIKey(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		mk := env.Bootstrap(acct)
		m := mk[sandbox]
		svc := env.Client(m.Secret) // the managed secret holds account:api:key:verify
		other := env.Bootstrap("acct_other_verify")[sandbox]
		reader := customKey(t, env, m, "reader", client.Permissions{"payment": {"read"}, "refund": {"read"}}, nil)

		t.Run("200 VALID: custom, managed and publishable keys, with their details", func(t *testing.T) {
			v, _, err := verifyKey(t, svc, reader.Key, nil)
			wantVerdict(t, v, err, oapi.VerifyValid, reader.ID)
			if *v.AccountID != acct || *v.Mode != oapi.VerifiedTest || *v.Type != oapi.VerifiedSecret || *v.Managed || *v.InGracePeriod ||
				v.ExpiresAt != nil || v.GracePeriodEndsAt != nil || v.MissingPermissions != nil || v.RetryAfterSeconds != nil ||
				!slices.Equal((*v.Permissions)["payment"], []string{"read"}) {
				t.Fatalf("details: %+v", v)
			}
			v, _, err = verifyKey(t, svc, m.Publishable, oapi.Permissions{"payment": {"read"}})
			wantVerdict(t, v, err, oapi.VerifyValid, m.PublishableID)
			if *v.Type != oapi.VerifiedPublishable || !*v.Managed {
				t.Fatalf("details: %+v", v)
			}
			v, _, err = verifyKey(t, svc, m.Secret, oapi.Permissions{"account:api:key": {"verify", "create"}})
			wantVerdict(t, v, err, oapi.VerifyValid, m.SecretID)
			exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
			expiring := customKey(t, env, m, "expiring later", client.Permissions{}, &exp)
			v, _, err = verifyKey(t, svc, expiring.Key, oapi.Permissions{})
			wantVerdict(t, v, err, oapi.VerifyValid, expiring.ID)
			if v.ExpiresAt == nil || !v.ExpiresAt.Equal(exp) {
				t.Fatalf("expires_at %v, want %v", v.ExpiresAt, exp)
			}
		})
		t.Run("200 VALID for a caller that is a JWT with the permission, on any of its accounts", func(t *testing.T) {
			jwt := env.JWT.Sign(t, env.JWT.Claims("gateway", []string{"acct_other_verify", acct}, []string{"account:api:key:verify"}, "test"))
			v, _, err := verifyKey(t, env.Client(jwt), reader.Key, oapi.Permissions{"refund": {"read"}})
			wantVerdict(t, v, err, oapi.VerifyValid, reader.ID)
			v, _, err = verifyKey(t, env.Client(jwt), other.Secret, nil)
			wantVerdict(t, v, err, oapi.VerifyValid, other.SecretID)
		})
		t.Run("200 INSUFFICIENT_PERMISSIONS lists what the key lacks, sorted", func(t *testing.T) {
			v, _, err := verifyKey(t, svc, reader.Key, oapi.Permissions{"refund": {"create", "read"}, "payment": {"read", "create"}})
			wantVerdict(t, v, err, oapi.VerifyInsufficientPermissions, reader.ID)
			if v.MissingPermissions == nil || !slices.Equal(*v.MissingPermissions, []string{"payment:create", "refund:create"}) {
				t.Fatalf("missing_permissions %v", v.MissingPermissions)
			}
			// Publishable keys hold no key management.
			v, _, err = verifyKey(t, svc, m.Publishable, oapi.Permissions{"account:api:key": {"read"}})
			wantVerdict(t, v, err, oapi.VerifyInsufficientPermissions, m.PublishableID)
		})
		t.Run("200 NOT_FOUND alike for no key, no such key, another account's or mode's key", func(t *testing.T) {
			oc := env.Client(other.Secret)
			goneElsewhere, err := oc.CreateAPIKey(ctx, "acct_other_verify", newKeyReq("gone elsewhere", client.Permissions{}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := deleteKey(t, oc, goneElsewhere.ID); err != nil {
				t.Fatal(err)
			}
			offElsewhere, err := oc.CreateAPIKey(ctx, "acct_other_verify", newKeyReq("off elsewhere", client.Permissions{}))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := updateKey(t, oc, offElsewhere.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
				t.Fatal(err)
			}
			last := reader.Key[len(reader.Key)-1]
			broken := reader.Key[:len(reader.Key)-1] + map[bool]string{true: "B", false: "A"}[last == 'A']
			unknown, err := keys.New(keys.KindSecret, true)
			if err != nil {
				t.Fatal(err)
			}
			jwt := env.JWT.Sign(t, env.JWT.Claims("someone", []string{acct}, nil, "test"))
			for what, key := range map[string]string{
				"not a key":                         "hello",
				"a JWT":                             jwt,
				"a bad checksum":                    broken,
				"a well-formed key nobody has":      unknown,
				"another account's key":             other.Secret,
				"another account's publishable key": other.Publishable,
				"another account's deleted key":     goneElsewhere.Key,
				"another account's disabled key":    offElsewhere.Key,
				"the live key of the same account":  mk[apikey.Live].Secret,
			} {
				v, raw, err := verifyKey(t, svc, key, oapi.Permissions{"payment": {"read"}})
				if err != nil {
					t.Fatalf("%s: %v", what, err)
				}
				if raw != notFound {
					t.Fatalf("%s: %s, want exactly %s", what, raw, notFound)
				}
				wantVerdict(t, v, err, oapi.VerifyNotFound, "")
			}
		})
		t.Run("200 DISABLED, then VALID once switched back on", func(t *testing.T) {
			k := customKey(t, env, m, "switched", client.Permissions{}, nil)
			if _, err := updateKey(t, svc, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
				t.Fatal(err)
			}
			v, _, err := verifyKey(t, svc, k.Key, nil)
			wantVerdict(t, v, err, oapi.VerifyDisabled, k.ID)
			if _, err := updateKey(t, svc, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)}); err != nil {
				t.Fatal(err)
			}
			v, _, err = verifyKey(t, svc, k.Key, nil)
			wantVerdict(t, v, err, oapi.VerifyValid, k.ID)
		})
		t.Run("200 REVOKED for a deleted key, even asked for permissions it lacks", func(t *testing.T) {
			k := customKey(t, env, m, "revoked", client.Permissions{}, nil)
			if _, err := deleteKey(t, svc, k.ID); err != nil {
				t.Fatal(err)
			}
			v, _, err := verifyKey(t, svc, k.Key, oapi.Permissions{"payment": {"create"}})
			wantVerdict(t, v, err, oapi.VerifyRevoked, k.ID)
			if v.MissingPermissions != nil {
				t.Fatalf("a revoked key's verdict lists missing permissions: %v", *v.MissingPermissions)
			}
		})
		t.Run("verify changes nothing: no audit event, no key changed; a use of the key is recorded", func(t *testing.T) {
			before := auditAll(t, svc, acct)
			k := customKey(t, env, m, "used by verify", client.Permissions{}, nil)
			env.FlushUsage()
			if v, _ := getKey(t, svc, k.ID); v.LastUsedAt != nil {
				t.Fatalf("a new key was used: %v", v.LastUsedAt)
			}
			for _, key := range []string{k.Key, other.Secret, "sk_test_x"} {
				if _, _, err := verifyKey(t, svc, key, nil); err != nil {
					t.Fatal(err)
				}
			}
			env.FlushUsage()
			v, err := getKey(t, svc, k.ID)
			if err != nil || v.LastUsedAt == nil || v.LastUsedIP == nil || *v.LastUsedIP != "127.0.0.1" || v.Status != client.StatusActive {
				t.Fatalf("after verify: %+v %v", v, err)
			}
			after := auditAll(t, svc, acct)
			if len(after) != len(before)+1 || after[0].Action != client.AuditCreate || after[0].KeyID != k.ID {
				t.Fatalf("audit events: %d before, %d after (newest %s of %s); want only the create", len(before), len(after), after[0].Action, after[0].KeyID)
			}
		})
		t.Run("400 body does not match the schema", func(t *testing.T) {
			for what, body := range map[string]string{
				"no key":            `{}`,
				"empty key":         `{"key":""}`,
				"key too long":      `{"key":"` + strings.Repeat("k", 513) + `"}`,
				"not a string":      `{"key":42}`,
				"unknown field":     `{"key":"sk_test_x","account_id":"acct_main"}`,
				"permissions shape": `{"key":"sk_test_x","permissions":["payment:read"]}`,
			} {
				res, err := svc.Raw().VerifyAPIKeyWithBodyWithResponse(ctx, "application/json", strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				err = answer(res.HTTPResponse, res.Body)
				ae := requireAPIError(t, err, 400, client.CodeValidationFailed)
				if len(ae.Fields) == 0 {
					t.Fatalf("%s: no field errors: %+v", what, ae)
				}
			}
		})
		t.Run("401 unknown credential", func(t *testing.T) {
			_, _, err := verifyKey(t, env.Client("sk_test_garbage"), reader.Key, nil)
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 caller without account:api:key:verify, publishable or replaced secret", func(t *testing.T) {
			noVerify := customKey(t, env, m, "no verify", client.Permissions{"account:api:key": {"read", "create"}}, nil)
			_, _, err := verifyKey(t, env.Client(noVerify.Key), reader.Key, nil)
			ae := requireAPIError(t, err, 403, client.CodePermissionDenied)
			if ae.Details["required"] != "account:api:key:verify" {
				t.Fatalf("details %v", ae.Details)
			}
			_, _, err = verifyKey(t, env.Client(m.Publishable), reader.Key, nil)
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
			// A key that may verify is replaced with a grace period: its old secret may not.
			rot := env.Bootstrap("acct_verify_rot")[sandbox]
			if _, err := env.Client(rot.Secret).RegenerateAPIKey(ctx, rot.SecretID, client.WithGracePeriod(time.Hour)); err != nil {
				t.Fatal(err)
			}
			_, _, err = verifyKey(t, env.Client(rot.Secret), rot.Publishable, nil)
			wantAPIError(t, err, 403, client.CodeReplacedSecret)
		})
		t.Run("422 unknown permission asked for", func(t *testing.T) {
			_, _, err := verifyKey(t, svc, reader.Key, oapi.Permissions{"payment": {"explode"}, "rockets": {"launch"}})
			ae := requireAPIError(t, err, 422, client.CodeUnknownPermission)
			if got := toStrings(ae.Details["unknown"]); !slices.Equal(got, []string{"payment:explode", "rockets:launch"}) {
				t.Fatalf("details.unknown %v", got)
			}
		})
		// The clock moves from here on.
		t.Run("200 VALID in the grace period of a rotation, then REVOKED", func(t *testing.T) {
			rot := env.Bootstrap("acct_verify_grace")[sandbox]
			jwt := env.JWT.Sign(t, env.JWT.Claims("gateway", []string{"acct_verify_grace"}, []string{"account:api:key:verify", "account:api:key:update",
				"account:read", "customer:read", "payment:read", "refund:read", "webhook:read"}, "test"))
			gw := env.Client(jwt)
			rotated, err := gw.RegenerateAPIKey(ctx, rot.PublishableID, client.WithGracePeriod(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			v, _, err := verifyKey(t, gw, rot.Publishable, oapi.Permissions{"payment": {"read"}})
			wantVerdict(t, v, err, oapi.VerifyValid, rot.PublishableID)
			if !*v.InGracePeriod || v.GracePeriodEndsAt == nil || !v.GracePeriodEndsAt.Equal(*rotated.PreviousKeyExpiresAt) {
				t.Fatalf("grace: %v until %v, want until %v", *v.InGracePeriod, v.GracePeriodEndsAt, rotated.PreviousKeyExpiresAt)
			}
			v, _, err = verifyKey(t, gw, rotated.Key, nil)
			wantVerdict(t, v, err, oapi.VerifyValid, rot.PublishableID)
			if *v.InGracePeriod || v.GracePeriodEndsAt != nil {
				t.Fatalf("the current secret is in grace: %+v", v)
			}
			env.Clock.Advance(61 * time.Minute)
			v, _, err = verifyKey(t, gw, rot.Publishable, nil)
			wantVerdict(t, v, err, oapi.VerifyRevoked, rot.PublishableID)
			if *v.InGracePeriod || v.GracePeriodEndsAt != nil {
				t.Fatalf("a revoked secret in grace: %+v", v)
			}
		})
		t.Run("200 EXPIRED past expires_at", func(t *testing.T) {
			exp := env.Clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
			k := customKey(t, env, m, "short-lived", client.Permissions{}, &exp)
			env.Clock.Advance(2 * time.Hour)
			v, _, err := verifyKey(t, svc, k.Key, nil)
			wantVerdict(t, v, err, oapi.VerifyExpired, k.ID)
			if v.ExpiresAt == nil || !v.ExpiresAt.Equal(exp) {
				t.Fatalf("expires_at %v", v.ExpiresAt)
			}
		})
	})
	t.Run("routing: POST only, and never taken for a key id", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{})
		m := env.Bootstrap(acct)[sandbox]
		for _, c := range []struct {
			method, path string
			status       int
			allow        string
		}{
			{"GET", "/v1/api-keys/verify", 405, "POST"},
			{"PATCH", "/v1/api-keys/verify", 405, "POST"},
			{"DELETE", "/v1/api-keys/verify", 405, "POST"},
			{"POST", "/v1/api-keys/" + m.SecretID, 405, "GET, PATCH, DELETE"},
			{"POST", "/v1/api-keys/verify/regenerate", 400, ""}, // "verify" is no key id
		} {
			req, err := http.NewRequestWithContext(ctx, c.method, env.Root+c.path, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+m.Secret)
			req.Header.Set("Content-Type", "application/json")
			res, _ := hxDo(t, http.DefaultClient, req) //nolint:bodyclose // hxDo reads and closes the body
			if res.StatusCode != c.status || res.Header.Get("Allow") != c.allow {
				t.Errorf("%s %s: %d Allow %q, want %d Allow %q", c.method, c.path, res.StatusCode, res.Header.Get("Allow"), c.status, c.allow)
			}
		}
	})
	t.Run("200 RATE_LIMITED: the verified key's own budget, spent as its requests spend it", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 3, apikey.Sandbox: 3}})
		env.Bootstrap(acct)
		// A JWT caller spends only its own subject's budget.
		gw := env.Client(env.JWT.Sign(t, env.JWT.Claims("gateway", []string{acct}, []string{"account:api:key:verify", "account:api:key:create", "payment:read"}, "test")))
		k, err := gw.CreateAPIKey(ctx, acct, newKeyReq("busy", client.Permissions{"payment": {"read"}}))
		if err != nil {
			t.Fatal(err)
		}
		// Keys not found spend nothing: another account's caller cannot drain
		// k (had it, k's own requests below would get 429, not 403).
		stranger := env.Client(env.Bootstrap("acct_stranger")[sandbox].Secret)
		for range 3 {
			if _, raw, err := verifyKey(t, stranger, k.Key, nil); err != nil || raw != notFound {
				t.Fatalf("%s %v", raw, err)
			}
		}
		// k spends its whole budget on requests of its own (403s spend too).
		for range 3 {
			_, err := getKey(t, env.Client(k.Key), k.ID)
			wantAPIError(t, err, 403, client.CodePermissionDenied)
		}
		res, err := gw.Raw().VerifyAPIKeyWithResponse(ctx, oapi.VerifyAPIKeyRequest{Key: k.Key, Permissions: &oapi.Permissions{"payment": {"create"}}})
		if err != nil || res.JSON200 == nil {
			t.Fatalf("%v %s", err, res.Body)
		}
		v := &res.JSON200.Data
		wantVerdict(t, v, nil, oapi.VerifyRateLimited, k.ID)
		if v.RetryAfterSeconds == nil || *v.RetryAfterSeconds < 1 || v.MissingPermissions != nil {
			t.Fatalf("retry_after_seconds %v, missing %v", v.RetryAfterSeconds, v.MissingPermissions)
		}
		// The RateLimit-* headers are the caller's budget, not the key's.
		if got := res.HTTPResponse.Header.Get("RateLimit-Remaining"); got != "1" {
			t.Fatalf("RateLimit-Remaining %q, want the caller's 1", got)
		}
	})
	t.Run("200 RATE_LIMITED: the verified key's account budget", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{AccountLimits: map[apikey.Mode]int{apikey.Live: 3, apikey.Sandbox: 3}})
		m := env.Bootstrap(acct)[sandbox]
		gw := env.Client(env.JWT.Sign(t, env.JWT.Claims("gateway", []string{acct}, []string{"account:api:key:verify"}, "test")))
		var v *oapi.VerifyAPIKeyResult
		var err error
		for i := 0; i < 4; i++ {
			v, _, err = verifyKey(t, gw, m.Publishable, nil)
			if err != nil {
				t.Fatal(err)
			}
			if want := oapi.VerifyValid; i < 3 && v.Code != want {
				t.Fatalf("verify #%d: %s, want %s", i+1, v.Code, want)
			}
		}
		wantVerdict(t, v, err, oapi.VerifyRateLimited, m.PublishableID)
		// The account's other keys share that budget.
		v, _, err = verifyKey(t, gw, m.Secret, nil)
		wantVerdict(t, v, err, oapi.VerifyRateLimited, m.SecretID)
	})
	t.Run("429 the caller over its own budget", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1, apikey.Sandbox: 1}})
		m := env.Bootstrap(acct)[sandbox]
		c := env.Client(m.Secret)
		var err error
		for i := 0; i < 5 && err == nil; i++ {
			_, _, err = verifyKey(t, c, "sk_test_x", nil)
		}
		wantAPIError(t, err, 429, client.CodeRateLimited)
	})
	t.Run("500 store unavailable", func(t *testing.T) {
		inner, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		flaky := &hxFlakyStore{Store: inner}
		env := testenv.New(t, testenv.Config{Store: flaky})
		m := env.Bootstrap(acct)[sandbox]
		jwt := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{"account:api:key:verify"}, "test"))
		flaky.state.Store(hxDown)
		_, _, err = verifyKey(t, env.Client(jwt), m.Secret, nil)
		wantAPIError(t, err, 500, client.CodeInternal)
	})
}
