package server_test

// Issue 17, class 5: only named proxies may say who the client is. The
// client address decides whose failed-authentication budget a request
// spends and is written into the audit trail as client_ip.

import (
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// lastClientIP is the client_ip of the account's newest sandbox audit event.
func lastClientIP(t *testing.T, env *testenv.Env, secret string) string {
	t.Helper()
	page, err := env.Client(secret).ListAuditEventsPage(ctx, acct, client.ListAuditEventsOptions{Limit: 1})
	if err != nil || len(page.Data) != 1 {
		t.Fatalf("audit events: %v", err)
	}
	return page.Data[0].ClientIP
}

// TestTrustedProxiesForwardedFor: with no trusted proxy, a forged
// X-Forwarded-For from loopback changes nothing (forged keys spend the
// peer's budget, the audit records the peer); with loopback trusted, the
// rightmost address that is not a trusted proxy is the client, so a client
// behind the proxy cannot choose its address: "victim, attacker" is the
// attacker's.
func TestTrustedProxiesForwardedFor(t *testing.T) {
	const limit = 4
	t.Run("none trusted", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{AuthFailureLimit: limit})
		m := env.Bootstrap(acct)[apikey.Sandbox]
		if _, err := clientFrom(t, env, m.Secret, "203.0.113.50").CreateAPIKey(ctx, acct, newKeyReq("forged xff", client.Permissions{})); err != nil {
			t.Fatal(err)
		}
		if got := lastClientIP(t, env, m.Secret); got != "127.0.0.1" {
			t.Fatalf("audit client_ip %q, want the peer's 127.0.0.1", got)
		}
		// A fresh X-Forwarded-For for each forged key: one budget, the peer's.
		failed, _, elapsed := untilLimited(t, 4*limit, 401, client.CodeInvalidCredentials, client.CodeTooManyAuthFailures, func(i int) error {
			_, err := clientFrom(t, env, forged(t, keys.KindSecret, true), fmt.Sprintf("203.0.113.%d", i+1)).RegenerateAPIKey(ctx, m.SecretID)
			return err
		})
		limitedAt := time.Now()
		wantBurst(t, "forged keys behind forged X-Forwarded-For", failed, limit, elapsed)
		_, err := clientFrom(t, env, m.Secret, "198.51.100.99").GetAPIKey(ctx, m.SecretID)
		if time.Since(limitedAt) < time.Second/limit {
			wantAPIError(t, err, 429, client.CodeTooManyAuthFailures) // the peer is blocked, whatever it claims
		}
	})
	t.Run("loopback trusted", func(t *testing.T) {
		env := testenv.New(t, testenv.Config{AuthFailureLimit: limit, TrustedProxies: []string{"127.0.0.0/8", "::1/128"}})
		m := env.Bootstrap(acct)[apikey.Sandbox]
		if _, err := clientFrom(t, env, m.Secret, "198.51.100.1, 203.0.113.9, 127.0.0.2").CreateAPIKey(ctx, acct, newKeyReq("via proxies", client.Permissions{})); err != nil {
			t.Fatal(err)
		}
		if got := lastClientIP(t, env, m.Secret); got != "203.0.113.9" {
			t.Fatalf("audit client_ip %q, want the rightmost untrusted 203.0.113.9", got)
		}
		// The attacker (203.0.113.66, not a proxy) names its victim; the
		// proxy appends the address it saw. The attacker spends its own budget.
		const victim, attacker = "198.51.100.77", "203.0.113.66"
		failed, _, elapsed := untilLimited(t, 4*limit, 401, client.CodeInvalidCredentials, client.CodeTooManyAuthFailures, func(int) error {
			_, err := clientFrom(t, env, forged(t, keys.KindSecret, true), victim+", "+attacker).RegenerateAPIKey(ctx, m.SecretID)
			return err
		})
		limitedAt := time.Now()
		wantBurst(t, "an attacker naming a victim", failed, limit, elapsed)
		_, err := clientFrom(t, env, m.Secret, attacker).GetAPIKey(ctx, m.SecretID)
		if time.Since(limitedAt) < time.Second/limit {
			wantAPIError(t, err, 429, client.CodeTooManyAuthFailures)
		}
		if _, err := clientFrom(t, env, m.Secret, victim).GetAPIKey(ctx, m.SecretID); err != nil {
			t.Fatalf("the victim, after the attacker named it: %v", err)
		}
		_, err = clientFrom(t, env, forged(t, keys.KindSecret, true), victim).RegenerateAPIKey(ctx, m.SecretID)
		wantAPIError(t, err, 401, client.CodeInvalidCredentials) // its budget untouched
	})
}
