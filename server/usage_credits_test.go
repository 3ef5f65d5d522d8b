package server_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// wantCredits verifies key with opts and checks the verdict and what is
// left (-1: no credits_remaining).
func wantCredits(t *testing.T, c *client.Client, key string, code client.VerifyCode, left int64, opts ...client.VerifyOption) {
	t.Helper()
	v, err := c.VerifyKey(ctx, key, opts...)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	got := int64(-1)
	if v.CreditsRemaining != nil {
		got = *v.CreditsRemaining
	}
	if v.Code != code || got != left || v.Valid != (code == client.VerifyValid) {
		t.Fatalf("verify: %s (valid %v) with %d left, want %s with %d", v.Code, v.Valid, got, code, left)
	}
}

// remaining is a key's credits as read by c (-1: none).
func remaining(t *testing.T, c *client.Client, id string) int64 {
	t.Helper()
	k, err := getKey(t, c, id)
	if err != nil {
		t.Fatalf("get %s: %v", id, err)
	}
	if k.Credits == nil {
		return -1
	}
	return k.Credits.Remaining
}

// creditEvents are the credits each audit event of key id records, oldest
// first, with credits_added where there is one.
func creditEvents(t *testing.T, c *client.Client, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	events := auditAll(t, c, acct)
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		if cr, ok := e.Changes["credits"].(map[string]any); ok && e.KeyID == id {
			if add, ok := e.Changes["credits_added"]; ok {
				cr["added"] = add
			}
			cr["action"] = string(e.Action)
			out = append(out, cr)
		}
	}
	return out
}

// TestUsageCredits (issue 22, rule 24): a key's credits are spent by every
// verify of it that is otherwise VALID, by its cost, down to zero
// (USAGE_EXCEEDED, nothing spent); set, added to and refilled; bounded by
// the caller's own credits (40308); never on the root (42205); never spent
// by the key's own requests or by anyone who cannot see the key. On SQLite
// and PostgreSQL.
func TestUsageCredits(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		all := env.Bootstrap(acct)
		m := all[apikey.Sandbox]
		root := env.Client(m.Secret)

		t.Run("verify spends the cost and says what is left", func(t *testing.T) {
			k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "metered", Permissions: client.Permissions{"payment": {"read"}},
				Credits: &client.Credits{Remaining: 5}})
			if k.Credits == nil || k.Credits.Remaining != 5 || k.Credits.Refill != nil {
				t.Fatalf("created with credits %+v", k.Credits)
			}
			wantCredits(t, root, k.Key, client.VerifyValid, 4)
			wantCredits(t, root, k.Key, client.VerifyValid, 3)
			// A verdict other than VALID spends nothing, before or after.
			wantCredits(t, root, k.Key, client.VerifyInsufficientPermissions, -1, client.RequirePermissions("payment:create"))
			wantCredits(t, root, k.Key, client.VerifyUsageExceeded, 3, client.Cost(4))
			wantCredits(t, root, k.Key, client.VerifyValid, 0, client.Cost(3), client.RequirePermissions("payment:read"))
			wantCredits(t, root, k.Key, client.VerifyUsageExceeded, 0)
			wantCredits(t, root, k.Key, client.VerifyValid, 0, client.Cost(0))
			if got := remaining(t, root, k.ID); got != 0 {
				t.Fatalf("the key reads %d left", got)
			}
			plain := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "unmetered", Permissions: client.Permissions{}})
			if plain.Credits != nil {
				t.Fatalf("a key without credits answers %+v", plain.Credits)
			}
			wantCredits(t, root, plain.Key, client.VerifyValid, -1, client.Cost(1000000))
			// The Go client refuses a cost out of range before sending.
			if _, err := root.VerifyKey(ctx, k.Key, client.Cost(1000001)); err == nil {
				t.Fatal("cost 1000001 sent")
			}
		})

		t.Run("set, add and refill, audited", func(t *testing.T) {
			k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "topped up", Permissions: client.Permissions{},
				Credits: &client.Credits{Remaining: 1}})
			wantCredits(t, root, k.Key, client.VerifyValid, 0)
			got, err := updateKey(t, root, k.ID, client.UpdateAPIKeyRequest{Credits: &client.Credits{Remaining: 10,
				Refill: &client.CreditRefill{Amount: 10, Interval: client.RefillMonthly, Day: ptr(31)}}})
			if err != nil || got.Credits == nil || got.Credits.Remaining != 10 || got.Credits.Refill == nil || *got.Credits.Refill.Day != 31 {
				t.Fatalf("set: %v, %+v", err, got)
			}
			wantCredits(t, root, k.Key, client.VerifyValid, 9)
			got, err = updateKey(t, root, k.ID, client.UpdateAPIKeyRequest{CreditsAdd: ptr(int64(6))})
			if err != nil || got.Credits.Remaining != 15 || got.Credits.Refill.Amount != 10 {
				t.Fatalf("add: %v, %+v", err, got)
			}
			wantCredits(t, root, k.Key, client.VerifyValid, 14)
			// The same credits again change nothing and record nothing.
			if _, err := updateKey(t, root, k.ID, client.UpdateAPIKeyRequest{Credits: &client.Credits{Remaining: 14,
				Refill: &client.CreditRefill{Amount: 10, Interval: client.RefillMonthly, Day: ptr(31)}}}); err != nil {
				t.Fatal(err)
			}
			ev := creditEvents(t, root, k.ID)
			if len(ev) != 3 || ev[0]["action"] != "create" || ev[0]["remaining"] != float64(1) ||
				ev[1]["remaining"] != float64(10) || ev[1]["refill"].(map[string]any)["day"] != float64(31) ||
				ev[2]["remaining"] != float64(15) || ev[2]["added"] != float64(6) {
				t.Fatalf("audited credits %v", ev)
			}
			_, err = updateKey(t, root, k.ID, client.UpdateAPIKeyRequest{CreditsAdd: ptr(int64(1_000_000_000_000))})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
			if got := remaining(t, root, k.ID); got != 14 {
				t.Fatalf("a refused add left %d", got)
			}
		})

		t.Run("42208 and 42205", func(t *testing.T) {
			plain := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "no credits", Permissions: client.Permissions{}})
			_, err := updateKey(t, root, plain.ID, client.UpdateAPIKeyRequest{CreditsAdd: ptr(int64(5))})
			wantAPIError(t, err, 422, client.CodeCreditsInvalid)
			_, err = updateKey(t, root, plain.ID, client.UpdateAPIKeyRequest{Credits: &client.Credits{Remaining: 1}, CreditsAdd: ptr(int64(5))})
			wantAPIError(t, err, 422, client.CodeCreditsInvalid)
			daily := &client.Credits{Remaining: 1, Refill: &client.CreditRefill{Amount: 1, Interval: client.RefillDaily, Day: ptr(3)}}
			_, err = updateKey(t, root, plain.ID, client.UpdateAPIKeyRequest{Credits: daily})
			wantAPIError(t, err, 422, client.CodeCreditsInvalid)
			_, err = root.CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "daily day", Permissions: client.Permissions{}, Credits: daily})
			wantAPIError(t, err, 422, client.CodeCreditsInvalid)
			if got := remaining(t, root, plain.ID); got != -1 {
				t.Fatalf("refused updates gave the key credits: %d", got)
			}
			_, err = updateKey(t, root, m.SecretID, client.UpdateAPIKeyRequest{Credits: &client.Credits{Remaining: 1000}})
			wantAPIError(t, err, 422, client.CodeManagedKeyFixed)
			wantCredits(t, root, m.Secret, client.VerifyValid, -1)
			// A managed publishable key may have credits.
			pub, err := updateKey(t, root, m.PublishableID, client.UpdateAPIKeyRequest{Credits: &client.Credits{Remaining: 2}})
			if err != nil || pub.Credits == nil || pub.Credits.Remaining != 2 {
				t.Fatalf("publishable: %v, %+v", err, pub)
			}
			wantCredits(t, root, m.Publishable, client.VerifyValid, 1)
		})

		t.Run("rule 24: a key with credits bounds the keys it creates and changes", func(t *testing.T) {
			admin := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "metered admin", Permissions: keyAdmin,
				Credits: &client.Credits{Remaining: 100, Refill: &client.CreditRefill{Amount: 100, Interval: client.RefillMonthly}}})
			c := env.Client(admin.Key)
			for _, cr := range []*client.Credits{nil, {Remaining: 101},
				{Remaining: 1, Refill: &client.CreditRefill{Amount: 101, Interval: client.RefillMonthly}},
				{Remaining: 1, Refill: &client.CreditRefill{Amount: 1, Interval: client.RefillDaily}}} {
				_, err := c.CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "beyond", Permissions: client.Permissions{}, Credits: cr})
				ae := requireAPIError(t, err, 403, client.CodeCreditEscalation)
				if ae.Details["caller_credits"] != "100, refill 100/monthly" {
					t.Fatalf("details %v", ae.Details)
				}
			}
			child := mustCreate(t, c, client.CreateAPIKeyRequest{Name: "child", Permissions: client.Permissions{},
				Credits: &client.Credits{Remaining: 60, Refill: &client.CreditRefill{Amount: 100, Interval: client.RefillMonthly, Day: ptr(15)}}})
			_, err := updateKey(t, c, child.ID, client.UpdateAPIKeyRequest{CreditsAdd: ptr(int64(41))})
			wantAPIError(t, err, 403, client.CodeCreditEscalation)
			if got, err := updateKey(t, c, child.ID, client.UpdateAPIKeyRequest{CreditsAdd: ptr(int64(40))}); err != nil || got.Credits.Remaining != 100 {
				t.Fatalf("add within: %v, %+v", err, got)
			}
			// The caller's own credits as they stand: spent below the child's,
			// it no longer changes the child.
			wantCredits(t, root, admin.Key, client.VerifyValid, 99)
			_, err = updateKey(t, c, child.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed")})
			wantAPIError(t, err, 403, client.CodeCreditEscalation)
			_, err = c.RegenerateAPIKey(ctx, child.ID)
			wantAPIError(t, err, 403, client.CodeCreditEscalation)
			unmetered := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "unmetered target", Permissions: client.Permissions{}})
			_, err = updateKey(t, c, unmetered.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed by a metered key")})
			wantAPIError(t, err, 403, client.CodeCreditEscalation)
			_, err = deleteKey(t, c, unmetered.ID)
			wantAPIError(t, err, 403, client.CodeCreditEscalation)
			// A caller without a refill gives none.
			once := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "once", Permissions: keyAdmin, Credits: &client.Credits{Remaining: 50}})
			_, err = env.Client(once.Key).CreateAPIKey(ctx, acct, client.CreateAPIKeyRequest{Name: "refilled", Permissions: client.Permissions{},
				Credits: &client.Credits{Remaining: 1, Refill: &client.CreditRefill{Amount: 1, Interval: client.RefillMonthly}}})
			wantAPIError(t, err, 403, client.CodeCreditEscalation)

			// Requests made with the key spend none of its credits.
			own := clientFrom(t, env, admin.Key, "127.0.0.1")
			for range 3 {
				if _, err := own.GetAPIKey(ctx, admin.ID); err != nil {
					t.Fatal(err)
				}
			}
			if got := remaining(t, root, admin.ID); got != 99 {
				t.Fatalf("the key's own requests left %d", got)
			}
		})

		t.Run("outsiders spend nothing", func(t *testing.T) {
			k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "guarded", Permissions: client.Permissions{}, Credits: &client.Credits{Remaining: 3}})
			other := env.Bootstrap("acct_other")
			wantCredits(t, env.Client(other[apikey.Sandbox].Secret), k.Key, client.VerifyNotFound, -1)
			wantCredits(t, env.Client(all[apikey.Live].Secret), k.Key, client.VerifyNotFound, -1)
			_, err := env.Client(m.Publishable).VerifyKey(ctx, k.Key)
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
			if got := remaining(t, root, k.ID); got != 3 {
				t.Fatalf("outsiders left %d", got)
			}
		})

		t.Run("refills at 00:00 UTC", func(t *testing.T) {
			daily := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "daily", Permissions: client.Permissions{},
				Credits: &client.Credits{Remaining: 1, Refill: &client.CreditRefill{Amount: 7, Interval: client.RefillDaily}}})
			monthly := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "monthly", Permissions: client.Permissions{},
				Credits: &client.Credits{Remaining: 0, Refill: &client.CreditRefill{Amount: 50, Interval: client.RefillMonthly, Day: ptr(31)}}})
			wantCredits(t, root, daily.Key, client.VerifyValid, 0)
			wantCredits(t, root, daily.Key, client.VerifyUsageExceeded, 0)
			now := env.Clock.Now().UTC()
			env.Clock.Advance(now.Truncate(24 * time.Hour).Add(24*time.Hour + time.Minute).Sub(now))
			if got := remaining(t, root, daily.ID); got != 7 {
				t.Fatalf("after midnight the daily key reads %d", got)
			}
			wantCredits(t, root, daily.Key, client.VerifyValid, 6)
			// Within 32 days every monthly boundary comes once.
			env.Clock.Advance(32 * 24 * time.Hour)
			if got := remaining(t, root, monthly.ID); got != 50 {
				t.Fatalf("a month on the monthly key reads %d", got)
			}
			wantCredits(t, root, monthly.Key, client.VerifyValid, 49)
			wantCredits(t, root, daily.Key, client.VerifyValid, 6)
		})
	})
}

// verifyAtOnce verifies key n times at once, spread over the clients, and
// counts the verdicts; each credits_remaining of a VALID one is different.
func verifyAtOnce(t *testing.T, clients []*client.Client, key string, n int) (valid, exceeded int) {
	t.Helper()
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		seen = map[int64]bool{}
		errs []string
	)
	for i := range n {
		wg.Go(func() {
			v, err := clients[i%len(clients)].VerifyKey(ctx, key)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err.Error())
			case v.CreditsRemaining == nil:
				errs = append(errs, "no credits_remaining")
			case v.Code == client.VerifyValid && !seen[*v.CreditsRemaining]:
				seen[*v.CreditsRemaining] = true
				valid++
			case v.Code == client.VerifyUsageExceeded && *v.CreditsRemaining == 0:
				exceeded++
			default:
				errs = append(errs, string(v.Code))
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d unexpected answers: %v", len(errs), errs[:min(5, len(errs))])
	}
	return valid, exceeded
}

// TestUsageCreditsExact: 200 verifies at once of a key holding 57 credits
// are exactly 57 VALID and 143 USAGE_EXCEEDED, leaving 0. On SQLite and
// PostgreSQL.
func TestUsageCreditsExact(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		root := env.Client(m.Secret)
		k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "57", Permissions: client.Permissions{}, Credits: &client.Credits{Remaining: 57}})
		valid, exceeded := verifyAtOnce(t, []*client.Client{root}, k.Key, 200)
		if valid != 57 || exceeded != 143 {
			t.Fatalf("%d VALID, %d USAGE_EXCEEDED; want 57 and 143", valid, exceeded)
		}
		if got := remaining(t, root, k.ID); got != 0 {
			t.Fatalf("%d left", got)
		}
	})
}

// TestUsageCreditsExactAcrossReplicas: the same on two replicas sharing
// PostgreSQL and Redis (credential cache invalidations and budgets): the
// database decides every spend.
func TestUsageCreditsExactAcrossReplicas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	lim := redisLimiter(t)
	rurl := redisURL(t)
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim, RedisURL: rurl})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim, RedisURL: rurl, IdempotencyKey: a.IdempotencyKey})
	m := a.Bootstrap(acct)[apikey.Sandbox]
	k := mustCreate(t, a.Client(m.Secret), client.CreateAPIKeyRequest{Name: "57", Permissions: client.Permissions{},
		Credits: &client.Credits{Remaining: 57}})
	valid, exceeded := verifyAtOnce(t, []*client.Client{a.Client(m.Secret), b.Client(m.Secret)}, k.Key, 200)
	if valid != 57 || exceeded != 143 {
		t.Fatalf("%d VALID, %d USAGE_EXCEEDED; want 57 and 143", valid, exceeded)
	}
	for _, env := range []*testenv.Env{a, b} {
		if got := remaining(t, env.Client(m.Secret), k.ID); got != 0 {
			t.Fatalf("%d left", got)
		}
	}
}

// spendDownStore is a real store whose SpendCredits fails, as an unreachable
// database would, while down is set.
type spendDownStore struct {
	store.Store
	down atomic.Bool
}

func (s *spendDownStore) Repo(m apikey.Mode) store.Repository {
	return spendDownRepo{Repository: s.Store.Repo(m), s: s}
}

type spendDownRepo struct {
	store.Repository
	s *spendDownStore
}

func (r spendDownRepo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (int64, bool, error) {
	if r.s.down.Load() {
		return 0, false, store.Unavailable(errors.New("spend: injected outage"))
	}
	return r.Repository.SpendCredits(ctx, id, cost, now)
}

// TestUsageCreditsStoreDown: a verify that cannot spend is the request's
// 503, never VALID; keys without credits verify as before.
func TestUsageCreditsStoreDown(t *testing.T) {
	inner, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st := &spendDownStore{Store: inner}
	env := testenv.New(t, testenv.Config{Store: st})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	root := env.Client(m.Secret)
	k := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "metered", Permissions: client.Permissions{}, Credits: &client.Credits{Remaining: 2}})
	plain := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "plain", Permissions: client.Permissions{}})
	st.down.Store(true)
	_, err = root.VerifyKey(ctx, k.Key)
	wantAPIError(t, err, 503, client.CodeStoreUnavailable)
	wantCredits(t, root, plain.Key, client.VerifyValid, -1)
	st.down.Store(false)
	wantCredits(t, root, k.Key, client.VerifyValid, 1)
}
