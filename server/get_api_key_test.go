package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// GET /api-keys/{id}: a subtest per documented status.
func TestGetAPIKey(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		mk := env.Bootstrap(acct)
		m := mk[sandbox]
		reader := env.Client(m.Secret)
		k := customKey(t, env, m, "to read", client.Permissions{"payment": {"read"}}, nil)

		t.Run("200 without the secret, with its hint", func(t *testing.T) {
			res, err := reader.Raw().GetAPIKeyWithResponse(ctx, k.ID)
			if err != nil || res.StatusCode() != 200 {
				t.Fatalf("%v %d %s", err, res.StatusCode(), res.Body)
			}
			if strings.Contains(string(res.Body), `"key":`) || strings.Contains(string(res.Body), k.Key) {
				t.Fatalf("a read returned the secret: %s", res.Body)
			}
			v := res.JSON200.Data
			want := k.Key[:8] + "…" + k.Key[len(k.Key)-4:]
			if v.ID != k.ID || v.KeyHint == nil || *v.KeyHint != want || v.Name != "to read" || v.Deleted {
				t.Fatalf("got %+v, hint want %s", v, want)
			}
		})
		t.Run("400 malformed id", func(t *testing.T) {
			_, err := getKey(t, reader, "nope")
			wantAPIError(t, err, 400, client.CodeValidationFailed)
		})
		t.Run("401 unknown credential", func(t *testing.T) {
			_, err := getKey(t, env.Client("sk_test_garbage"), k.ID)
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 without account:api:key:read", func(t *testing.T) {
			noRead := customKey(t, env, m, "no read", client.Permissions{"account:api:key": {"create"}}, nil)
			_, err := getKey(t, env.Client(noRead.Key), k.ID)
			wantAPIError(t, err, 403, client.CodePermissionDenied)
			_, err = getKey(t, env.Client(m.Publishable), k.ID)
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
		})
		t.Run("404 unknown, other account, other mode", func(t *testing.T) {
			_, err := getKey(t, reader, "key_doesnotexist0000")
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
			other := env.Bootstrap("acct_other_get")[sandbox]
			_, err = getKey(t, reader, other.SecretID)
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
			_, err = getKey(t, reader, mk[apikey.Live].SecretID)
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
		})
		t.Run("200 for a deleted key, marked deleted", func(t *testing.T) {
			gone := customKey(t, env, m, "gone", client.Permissions{}, nil)
			if _, err := deleteKey(t, reader, gone.ID); err != nil {
				t.Fatal(err)
			}
			v, err := getKey(t, reader, gone.ID)
			if err != nil || !v.Deleted {
				t.Fatalf("%+v %v", v, err)
			}
		})
	})
	t.Run("429 over budget", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1, apikey.Sandbox: 1}})
		m := env.Bootstrap(acct)[sandbox]
		c := env.Client(m.Secret)
		var err error
		for i := 0; i < 5 && err == nil; i++ {
			_, err = getKey(t, c, m.SecretID)
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
		jwt := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{"account:api:key:read"}, "test"))
		flaky.state.Store(hxDown)
		_, err = getKey(t, env.Client(jwt), m.SecretID)
		wantAPIError(t, err, 500, client.CodeInternal)
	})
}

// revokedEverywhere waits for nothing: a revoked secret must be refused on
// the very next request, on any replica (no credential cache).
func refusedNow(t *testing.T, env *testenv.Env, secret string) {
	t.Helper()
	_, err := getKey(t, env.Client(secret), "key_probe0000000000")
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
}

var _ = time.Second
