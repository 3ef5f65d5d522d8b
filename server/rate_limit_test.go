package server_test

import (
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// keyAdmin is what the limited keys of these tests hold: key management,
// and payment:read to hand out.
var keyAdmin = client.Permissions{"account:api:key": {"create", "read", "update", "delete", "verify"}, "payment": {"read"}}

// wantRateLimited checks a 429 42900 and its wait (retry_after_seconds and
// Retry-After) against the key's window.
func wantRateLimited(t *testing.T, err error, atLeast int) {
	t.Helper()
	ae := requireAPIError(t, err, 429, client.CodeRateLimited)
	if s, ok := ae.Details["retry_after_seconds"].(float64); !ok || int(s) < atLeast {
		t.Fatalf("retry_after_seconds %v, want at least %d", ae.Details["retry_after_seconds"], atLeast)
	}
}

// TestPerKeyRateLimit (issue 22): a key's own rate_limit replaces its mode's
// default budget for its requests and for verifies of it (RATE_LIMITED with
// when it has room); a key with one creates and changes only keys limited
// to no larger a rate, never unlimited ones (40307); the root is never
// limited (42205); every change is audited. On SQLite and PostgreSQL.
func TestPerKeyRateLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		root := env.Client(m.Secret)
		limited := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "limited", Permissions: keyAdmin,
			RateLimit: &client.RateLimit{Limit: 100, Window: "60s"}})
		if limited.RateLimit == nil || *limited.RateLimit != (client.RateLimit{Limit: 100, Window: "1m"}) {
			t.Fatalf("rate_limit %+v, want 100/1m", limited.RateLimit)
		}

		t.Run("the key's own requests spend its own limit", func(t *testing.T) {
			k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "three a minute", Permissions: keyAdmin,
				RateLimit: &client.RateLimit{Limit: 3, Window: "1m"}})
			c := clientFrom(t, env, k.Key, "127.0.0.1")
			for i := range 3 {
				if _, err := c.GetAPIKey(ctx, k.ID); err != nil {
					t.Fatalf("request %d: %v", i+1, err)
				}
			}
			_, err := c.GetAPIKey(ctx, k.ID)
			wantRateLimited(t, err, 19) // one request back every 20 s
			v, err := root.VerifyKey(ctx, k.Key)
			if err != nil || v.Code != client.VerifyRateLimited || v.RetryAfter < 19e9 {
				t.Fatalf("verify of a key over its own limit: %v, %+v", err, v)
			}
		})

		t.Run("verify spends the verified key's own limit", func(t *testing.T) {
			k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "two an hour", Permissions: client.Permissions{},
				RateLimit: &client.RateLimit{Limit: 2, Window: "1h"}})
			for i := range 2 {
				if v, err := root.VerifyKey(ctx, k.Key); err != nil || v.Code != client.VerifyValid {
					t.Fatalf("verify %d: %v, %+v", i+1, err, v)
				}
			}
			v, err := root.VerifyKey(ctx, k.Key)
			if err != nil || v.Code != client.VerifyRateLimited || v.RetryAfter < 29*60e9 {
				t.Fatalf("third verify: %v, %+v", err, v)
			}
		})

		t.Run("creates only keys limited to no larger a rate", func(t *testing.T) {
			c := env.Client(limited.Key)
			for _, rl := range []*client.RateLimit{nil, {Limit: 2, Window: "1s"}, {Limit: 101, Window: "1m"}, {Limit: 144001, Window: "1d"}} {
				req := client.CreateAPIKeyRequest{Name: "too fast", Permissions: client.Permissions{}, RateLimit: rl}
				_, err := c.CreateAPIKey(ctx, acct, req)
				ae := requireAPIError(t, err, 403, client.CodeRateLimitEscalation)
				if ae.Details["caller_rate_limit"] != "100/1m" {
					t.Fatalf("details %v", ae.Details)
				}
			}
			for _, rl := range []client.RateLimit{{Limit: 100, Window: "1m"}, {Limit: 1, Window: "1s"}, {Limit: 144000, Window: "1d"}} {
				mustCreate(t, c, client.CreateAPIKeyRequest{Name: "as fast " + rl.Window, Permissions: client.Permissions{}, RateLimit: &rl})
			}
		})

		t.Run("changes only keys so limited, and sets none larger", func(t *testing.T) {
			c := env.Client(limited.Key)
			unlimited := customKey(t, env, m, "unlimited", client.Permissions{"payment": {"read"}}, nil)
			_, err := updateKey(t, c, unlimited.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed by a limited key")})
			wantAPIError(t, err, 403, client.CodeRateLimitEscalation)
			_, err = deleteKey(t, c, unlimited.ID)
			wantAPIError(t, err, 403, client.CodeRateLimitEscalation)
			child := mustCreate(t, c, client.CreateAPIKeyRequest{Name: "child", Permissions: client.Permissions{},
				RateLimit: &client.RateLimit{Limit: 10, Window: "1m"}})
			_, err = updateKey(t, c, child.ID, client.UpdateAPIKeyRequest{RateLimit: &client.RateLimit{Limit: 200, Window: "1m"}})
			wantAPIError(t, err, 403, client.CodeRateLimitEscalation)
			got, err := updateKey(t, c, child.ID, client.UpdateAPIKeyRequest{RateLimit: &client.RateLimit{Limit: 50, Window: "1h"}})
			if err != nil || got.RateLimit == nil || *got.RateLimit != (client.RateLimit{Limit: 50, Window: "1h"}) {
				t.Fatalf("within its own: %v, %+v", err, got)
			}
			var seen []any
			for _, e := range auditAll(t, root, acct) {
				if e.KeyID == child.ID {
					seen = append(seen, e.Changes["rate_limit"])
				}
			}
			if len(seen) != 2 || seen[0].(map[string]any)["window"] != "1h" || seen[1].(map[string]any)["window"] != "1m" {
				t.Fatalf("audited rate_limit changes %v", seen)
			}
		})

		t.Run("the root is never limited; bad limits are the request's 400", func(t *testing.T) {
			_, err := updateKey(t, root, m.SecretID, client.UpdateAPIKeyRequest{RateLimit: &client.RateLimit{Limit: 1, Window: "1d"}})
			wantAPIError(t, err, 422, client.CodeManagedKeyFixed)
			for _, rl := range []client.RateLimit{{Limit: 1, Window: "2d"}, {Limit: 1, Window: "86401s"}, {Limit: 0, Window: "1m"},
				{Limit: 1, Window: "0s"}, {Limit: 1, Window: "1w"}, {Limit: 1000001, Window: "1s"}} {
				_, err := createUnchecked(t, root, acct, client.CreateAPIKeyRequest{Name: "bad limit", Permissions: client.Permissions{}, RateLimit: &rl})
				wantAPIError(t, err, 400, client.CodeValidationFailed)
			}
		})
	})
}

// TestPerKeyRateLimitAcrossReplicas: two replicas sharing PostgreSQL and
// Redis spend one budget per key: 4 an hour, whichever replica serves.
func TestPerKeyRateLimitAcrossReplicas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	lim := redisLimiter(t)
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim})
	m := a.Bootstrap(acct)[apikey.Sandbox]
	k := mustCreate(t, a.Client(m.Secret), client.CreateAPIKeyRequest{Name: "four an hour", Permissions: keyAdmin,
		RateLimit: &client.RateLimit{Limit: 4, Window: "1h"}})
	for i, env := range []*testenv.Env{a, b, a, b} {
		if _, err := clientFrom(t, env, k.Key, "127.0.0.1").GetAPIKey(ctx, k.ID); err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	for _, env := range []*testenv.Env{a, b} {
		_, err := clientFrom(t, env, k.Key, "127.0.0.1").GetAPIKey(ctx, k.ID)
		wantRateLimited(t, err, 14*60)
		v, err := env.Client(m.Secret).VerifyKey(ctx, k.Key)
		if err != nil || v.Code != client.VerifyRateLimited {
			t.Fatalf("verify on the other replica: %v, %+v", err, v)
		}
	}
}
