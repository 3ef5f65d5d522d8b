package server_test

// Issue 18: a key that rotates itself (the README's quickstart: the managed
// secret key regenerating its own key) and loses the answer retries with
// the secret that rotation replaced. That secret may fetch its rotation's
// stored answer and nothing else (class 2); and a replaced secret stays
// known until the key rotates again, so verify says REVOKED and a leak
// report true_positive (class 5).

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// loseAnswers is a transport that lets the server handle every request and
// commit, then throws the answer away: the client sees a connection reset.
type loseAnswers struct{ dropped [][]byte }

func (l *loseAnswers) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	_ = res.Body.Close()
	l.dropped = append(l.dropped, b.Bytes())
	return nil, errors.New("connection reset by peer (the test threw the answer away)")
}

func noRetryClient(t *testing.T, env *testenv.Env, token string, rt http.RoundTripper) *client.Client {
	t.Helper()
	c, err := client.New(env.URL, token, client.WithRetries(0, 0), client.WithHTTPClient(&http.Client{Transport: rt, Timeout: 10 * time.Second}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func regenOpts(key string, grace time.Duration) []client.RegenerateOption {
	opts := []client.RegenerateOption{client.WithIdempotencyKey(key)}
	if grace > 0 {
		opts = append(opts, client.WithGracePeriod(grace))
	}
	return opts
}

// The managed secret key rotates itself with an Idempotency-Key; the answer
// is lost after the server committed. Its retry, presented by the replaced
// secret (the only one the client holds) with the same key and body, gets
// the stored answer: the same new secret, Idempotent-Replayed: true, with
// or without grace. Every other use of the replaced secret is refused
// exactly as before (401 40101 without grace, 403 40304 in grace), spends
// what it spent before (without grace: the client address's
// failed-authentication budget only), and once the key is rotated again
// the replaced secret fetches nothing.
func TestSelfRotationReplayedToTheReplacedSecret(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run(fmt.Sprintf("grace %v", grace), func(t *testing.T) {
			eachStore(t, func(t *testing.T, cfg testenv.Config) {
				lim := &budgetLog{inner: ratelimit.NewMemory()}
				cfg.Limiter = lim
				env := testenv.New(t, cfg)
				m := env.Bootstrap(acct)[apikey.Live]
				old := m.Secret
				const key = "self-rotation-1"

				lost := &loseAnswers{}
				if _, err := noRetryClient(t, env, old, lost).RegenerateAPIKey(ctx, m.SecretID, regenOpts(key, grace)...); err == nil {
					t.Fatal("the transport lost the answer, yet the call succeeded")
				}
				if len(lost.dropped) != 1 {
					t.Fatalf("%d answers lost; want 1", len(lost.dropped))
				}
				_, newSecret := secretOf(t, lost.dropped[0])
				if !works(t, env, newSecret) {
					t.Fatal("the rotation did not commit")
				}
				// What the replaced secret gets on any request, today and after.
				wantStatus, wantCode := 401, client.CodeInvalidCredentials
				if grace > 0 {
					wantStatus, wantCode = 403, client.CodeReplacedSecret
				}

				// The retry with the replaced secret, same key, same body.
				lim.take()
				tap := &headerTap{}
				retry := noRetryClient(t, env, old, tap)
				for i := 1; i <= 2; i++ {
					got, err := retry.RegenerateAPIKey(ctx, m.SecretID, regenOpts(key, grace)...)
					if err != nil {
						t.Fatalf("retry %d by the replaced secret: %v; want its rotation's answer", i, err)
					}
					if got.Key != newSecret || got.ID != m.SecretID || tap.get("Idempotent-Replayed") != "true" {
						t.Fatalf("retry %d: secret same %v, id %s, Idempotent-Replayed %q; want the stored answer",
							i, got.Key == newSecret, got.ID, tap.get("Idempotent-Replayed"))
					}
				}
				// Each retry spends what the refused request spent before: a
				// dead secret's is a failed authentication of the address; a
				// secret in grace spends its key's and account's budgets.
				spent := lim.take()
				want := []string{"authfail:127.0.0.1", "authfail:127.0.0.1"}
				if grace > 0 {
					want = []string{"live:" + m.SecretID, "live:account:" + acct, "live:" + m.SecretID, "live:account:" + acct}
				}
				if !slices.Equal(spent, want) {
					t.Fatalf("two retries spent %v; want %v", spent, want)
				}
				if n := auditCount(t, env, testenv.Managed{Secret: newSecret}, client.AuditRegenerate, m.SecretID); n != 1 {
					t.Fatalf("%d regenerate events; want 1: a replay runs nothing", n)
				}

				// Everything else is refused as before, and changes nothing.
				refused := func(what string, err error) {
					t.Helper()
					wantAPIError(t, err, wantStatus, wantCode)
					if strings.Contains(err.Error(), "sk_") {
						t.Fatalf("%s: the refusal carries a secret: %v", what, err)
					}
				}
				_, err := retry.RegenerateAPIKey(ctx, m.SecretID, regenOpts("self-rotation-2", grace)...)
				refused("another Idempotency-Key", err)
				_, err = retry.RegenerateAPIKey(ctx, m.SecretID, regenOpts(key, grace+5*time.Minute)...)
				refused("the same Idempotency-Key with another body", err)
				_, err = retry.RegenerateAPIKey(ctx, m.SecretID, client.WithoutIdempotencyKey())
				refused("no Idempotency-Key", err)
				_, err = retry.RegenerateAPIKey(ctx, m.PublishableID, regenOpts(key, grace)...)
				refused("the same Idempotency-Key on another key", err)
				_, err = retry.GetAPIKey(ctx, m.SecretID)
				refused("get", err)
				_, err = retry.CreateAPIKey(ctx, acct, newKeyReq("by a replaced secret", client.Permissions{}), client.WithIdempotencyKey(key))
				refused("create", err)
				_, err = retry.VerifyKey(ctx, newSecret)
				refused("verify", err)
				// Even a request that fails validation gets the refusal first, as before.
				status, _, body := idemPost(t, env, old, "/api-keys/"+m.SecretID+"/regenerate", key, []byte(`{"grace_period_minutes":-1}`))
				wantRefused(t, "an invalid body under the same Idempotency-Key", status, body, wantStatus, wantCode, newSecret)
				if !works(t, env, newSecret) || auditCount(t, env, testenv.Managed{Secret: newSecret}, client.AuditRegenerate, m.SecretID) != 1 {
					t.Fatal("a refused request of the replaced secret changed the key")
				}

				// Rotated again: the first secret is forgotten and fetches nothing.
				third, err := env.Client(newSecret).RegenerateAPIKey(ctx, m.SecretID)
				if err != nil {
					t.Fatal(err)
				}
				_, err = retry.RegenerateAPIKey(ctx, m.SecretID, regenOpts(key, grace)...)
				wantAPIError(t, err, 401, client.CodeInvalidCredentials)
				// The second secret replays nothing of the first rotation either:
				// the answer is bound to the secret that made it.
				status, _, body = idemPost(t, env, newSecret, "/api-keys/"+m.SecretID+"/regenerate", key, nil)
				wantRefused(t, "the first rotation's key presented by the second secret", status, body, 401, client.CodeInvalidCredentials, third.Key)
			})
		})
	}
}

// A replaced secret stays known by its hash until the key rotates again
// (spec: verify REVOKED, leak report true_positive), whether or not its
// rotation gave a grace period; a secret rotated away twice is no key's.
func TestReplacedSecretIsRevokedUntilTheNextRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		signer, ghKeys := testenv.NewLeakSigner(t, "gh-rotation")
		cfg.SecretScanning = ghKeys
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Live]
		first := m.Secret
		k, err := env.Client(first).RegenerateAPIKey(ctx, m.SecretID) // no grace
		if err != nil {
			t.Fatal(err)
		}
		second := k.Key
		owner := env.Client(second)
		verdict := func(token string) *client.Verification {
			t.Helper()
			v, err := owner.VerifyKey(ctx, token)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
		if v := verdict(first); v.Code != client.VerifyRevoked || v.ID != m.SecretID || v.Valid {
			t.Fatalf("verify of a secret replaced without grace: %s (id %q); want REVOKED, the key shown", v.Code, v.ID)
		}
		stored, err := env.Store.Repo(apikey.Live).GetKey(ctx, m.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(stored.PrevSecretHash, keys.Hash(first)) || stored.PrevSecretExpiresAt == nil || stored.InGrace(env.Clock.Now()) {
			t.Fatal("the replaced secret is not kept with its grace ended")
		}
		events := eventCount(t, env, acct)
		got, _ := signedLeaks(t, env, signer, leakReport(first))
		if labels(got) != "true_positive" {
			t.Fatalf("leak report of a secret replaced without grace: %s; want true_positive", labels(got))
		}
		after, err := env.Store.Repo(apikey.Live).GetKey(ctx, m.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		if eventCount(t, env, acct) != events || !bytes.Equal(after.SecretHash, stored.SecretHash) || !after.UpdatedAt.Equal(stored.UpdatedAt) {
			t.Fatal("the leak report of a dead secret changed something")
		}
		if !works(t, env, second) {
			t.Fatal("the current secret stopped working")
		}

		// A rotation with grace: the second secret works until its grace
		// ends, then is REVOKED; the first is forgotten.
		k, err = owner.RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		owner = env.Client(k.Key)
		if v := verdict(second); v.Code != client.VerifyValid {
			t.Fatalf("verify of the secret in its grace: %s; want VALID", v.Code)
		}
		if v := verdict(first); v.Code != client.VerifyNotFound || v.ID != "" {
			t.Fatalf("verify of a secret rotated away twice: %s (id %q); want NOT_FOUND", v.Code, v.ID)
		}
		if got, _ := signedLeaks(t, env, signer, leakReport(first)); labels(got) != "false_positive" {
			t.Fatalf("leak report of a secret rotated away twice: %s; want false_positive", labels(got))
		}
		env.Clock.Advance(time.Hour)
		if v := verdict(second); v.Code != client.VerifyRevoked {
			t.Fatalf("verify of a secret whose grace ended: %s; want REVOKED", v.Code)
		}
		if got, _ := signedLeaks(t, env, signer, leakReport(second)); labels(got) != "true_positive" {
			t.Fatalf("leak report of a secret whose grace ended: %s; want true_positive", labels(got))
		}
	})
}
