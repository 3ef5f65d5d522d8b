package server_test

// Rule 7, "every request spends a budget": the credential's budget is spent
// before the permission check, every API key also spends its account's
// budget, and failed authentications spend a budget of the client address,
// which once exhausted is answered before any credential lookup.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// lookupCounter counts credential lookups (KeyBySecretHash) in every mode.
type lookupCounter struct {
	store.Store
	n atomic.Int64
}

func (s *lookupCounter) Repo(m apikey.Mode) store.Repository {
	return &countingRepo{Repository: s.Store.Repo(m), n: &s.n}
}

type countingRepo struct {
	store.Repository
	n *atomic.Int64
}

func (r *countingRepo) KeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, error) {
	r.n.Add(1)
	return r.Repository.KeyBySecretHash(ctx, hash)
}

func newLookupCounter(t *testing.T) *lookupCounter {
	t.Helper()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // the checks are done: closing only frees files and connections
	return &lookupCounter{Store: st}
}

// fromAddr sends every request with X-Forwarded-For: addr (the server must
// trust the proxy; the test's connection comes from loopback, a trusted hop).
type fromAddr struct{ addr string }

func (f fromAddr) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return http.DefaultTransport.RoundTrip(r)
}

// clientFrom is a non-retrying client for token whose requests come from addr.
func clientFrom(t *testing.T, env *testenv.Env, token, addr string) *client.Client {
	t.Helper()
	c, err := client.New(env.URL, token, client.WithRetries(0, 0), client.WithHTTPClient(&http.Client{Transport: fromAddr{addr}}))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// forged mints a well-formed key with a valid checksum that no one was issued.
func forged(t *testing.T, kind keys.Kind, sandbox bool) string {
	t.Helper()
	k, err := keys.New(kind, sandbox)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// rateLimitedCount reads one series of hsrcpay_rate_limited_total.
func rateLimitedCount(t *testing.T, m *metrics.Metrics, budget, mode string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hsrcpay_rate_limited_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range mt.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["budget"] == budget && labels["mode"] == mode {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func statusOf(t *testing.T, err error) (int, client.ErrorCode) {
	t.Helper()
	if err == nil {
		return 200, 0
	}
	ae := new(client.Error)
	if !asAPIError(err, &ae) {
		t.Fatalf("not an API error: %v", err)
	}
	return ae.StatusCode, ae.Code
}

// untilLimited calls do(i) until it answers 429 with the code limited (at
// most max calls). Every earlier answer must be status/code. It returns how
// many came before the 429, the 429 and the time since start.
func untilLimited(t *testing.T, max int, status int, code, limited client.ErrorCode, do func(i int) error) (int, *client.Error, time.Duration) {
	t.Helper()
	start := time.Now()
	for i := 0; i < max; i++ {
		err := do(i)
		ae := new(client.Error)
		if asAPIError(err, &ae) && ae.StatusCode == 429 {
			return i, requireAPIError(t, err, 429, limited), time.Since(start)
		}
		wantAPIError(t, err, status, code)
	}
	t.Fatalf("no 429 (%d) after %d requests", limited, max)
	return 0, nil, 0
}

// wantBurst checks that a budget of limit per second (a burst of limit)
// let through n requests in elapsed: at least the burst, at most the burst
// plus what refilled meanwhile.
func wantBurst(t *testing.T, what string, n, limit int, elapsed time.Duration) {
	t.Helper()
	if most := limit + int(elapsed.Seconds()*float64(limit)) + 1; n < limit || n > most {
		t.Fatalf("%s: %d requests before the 429 in %v; want %d to %d", what, n, elapsed, limit, most)
	}
}

// TestBudgetForbiddenSpendsBudget: a secret key refused with 403 (a
// permission it lacks) spends its own budget: its holder is its owner, and
// over the budget the answer is 429 even where it would have been 403. (A
// publishable key's 403s spend its presenter's address instead:
// TestBudgetPublishableKeySpendsPresenter.)
func TestBudgetForbiddenSpendsBudget(t *testing.T) {
	const n = 3
	env := testenv.New(t, testenv.Config{RateLimits: map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: n}})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	k, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("reader", client.Permissions{"payment": {"read"}}))
	if err != nil {
		t.Fatal(err)
	}
	reader := env.Client(k.Key)
	got, ae, elapsed := untilLimited(t, 4*n, 403, client.CodePermissionDenied, client.CodeRateLimited, func(i int) error {
		if i%2 == 0 {
			_, err := reader.CreateAPIKey(ctx, acct, newKeyReq("y", client.Permissions{}))
			return err
		}
		_, err := reader.RegenerateAPIKey(ctx, m.SecretID)
		return err
	})
	wantBurst(t, "key without the permission", got, n, elapsed)
	if ae.RetryAfter < time.Second {
		t.Fatalf("Retry-After %v", ae.RetryAfter)
	}
}

// Budgets of TestBudgetPublishableKeySpendsPresenter: the pk's presenter
// sends more requests than the key's and the account's budgets hold, and
// the merchant's own requests afterwards fit in what they had.
const (
	pkCredentialLimit = 4
	pkAccountLimit    = 10
	pkFailLimit       = 16
)

func pkBudgetConfig(cfg testenv.Config) testenv.Config {
	cfg.RateLimits = map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: pkCredentialLimit}
	cfg.AccountLimits = map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: pkAccountLimit}
	cfg.AuthFailureLimit = pkFailLimit
	cfg.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
	return cfg
}

// TestBudgetPublishableKeySpendsPresenter (issue 17): a publishable key is
// public, and every bearer request made with it is refused (403 40303). Such
// a request spends its presenter's address budget (failed authentications:
// 42901 past it, and the address is blocked as for forged keys), never the
// key's budget nor its account's: an outsider holding only the merchant's
// pk cannot make the merchant's verify of that pk RATE_LIMITED nor its
// secret keys 429. A caller of another account verifying the pk (NOT_FOUND)
// spends nothing of the pk's either. On SQLite with one server, and on
// PostgreSQL with two replicas sharing budgets through Redis.
func TestBudgetPublishableKeySpendsPresenter(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		env := testenv.New(t, pkBudgetConfig(testenv.Config{}))
		checkPublishableSpendsPresenter(t, []*testenv.Env{env}, acct, "203.0.113.70", "198.51.100.70")
	})
	t.Run("postgres+redis two replicas", func(t *testing.T) {
		url := storetest.FreshPostgresDB(t)
		a := testenv.New(t, pkBudgetConfig(testenv.Config{Store: openPostgres(t, url), Limiter: redisLimiter(t)}))
		b := testenv.New(t, pkBudgetConfig(testenv.Config{Store: openPostgres(t, url), Limiter: redisLimiter(t)}))
		// Redis outlives the test: fresh names for the addresses and the account.
		run := time.Now().UnixNano()
		prefix := fmt.Sprintf("2001:db8:%x:%x", run>>16&0xffff, run&0xffff)
		checkPublishableSpendsPresenter(t, []*testenv.Env{a, b}, fmt.Sprintf("acct_pk%d", run), prefix+"::70", fmt.Sprintf("2001:db8:%x:%x::71", run>>16&0xffff, (run+1)&0xffff))
	})
}

func checkPublishableSpendsPresenter(t *testing.T, replicas []*testenv.Env, account, outsider, merchantAddr string) {
	t.Helper()
	at := func(i int) *testenv.Env { return replicas[i%len(replicas)] }
	m := replicas[0].Bootstrap(account)[apikey.Sandbox]
	stranger := replicas[0].Bootstrap(account + "_stranger")[apikey.Sandbox]

	// The outsider: 403 for every request with the pk, far past the key's
	// and the account's budgets, until its own address's budget is spent.
	got, ae, elapsed := untilLimited(t, 4*pkFailLimit, 403, client.CodePublishableKeyForbidden, client.CodeTooManyAuthFailures, func(i int) error {
		pub := clientFrom(t, at(i), m.Publishable, outsider)
		if i%2 == 0 {
			_, err := pub.RegenerateAPIKey(ctx, m.SecretID)
			return err
		}
		_, err := pub.GetAPIKey(ctx, m.SecretID)
		return err
	})
	limitedAt := time.Now()
	wantBurst(t, "a publishable key's requests from one address", got, pkFailLimit, elapsed)
	if got <= pkAccountLimit || ae.RetryAfter < time.Second {
		t.Fatalf("%d requests before 42901 (Retry-After %v); want more than the account's budget (%d)", got, ae.RetryAfter, pkAccountLimit)
	}
	// Blocked like an address forging keys: any credential gets 42901 from
	// there, on the replica that answered the 42901 (it knows), while the
	// budget has no room (it refills at pkFailLimit per second: checked only
	// when answered within a refill).
	_, err := clientFrom(t, at(got), m.Secret, outsider).GetAPIKey(ctx, m.SecretID)
	if time.Since(limitedAt) < time.Second/pkFailLimit {
		wantAPIError(t, err, 429, client.CodeTooManyAuthFailures)
	}

	// Another account's caller verifying the pk learns nothing and spends
	// nothing of the pk's (each verify spends the stranger's own budget).
	for i := range pkCredentialLimit - 1 {
		v, err := clientFrom(t, at(i), stranger.Secret, merchantAddr).VerifyKey(ctx, m.Publishable)
		if err != nil || v.Valid || v.Code != client.VerifyNotFound {
			t.Fatalf("another account's verify of the pk: %+v, %v", v, err)
		}
	}

	// The merchant, from its own address, on each replica: its verify of
	// the pk is VALID (the pk's and the account's budgets are untouched by
	// the outsider), and its secret key is served.
	for i := range replicas {
		merchant := clientFrom(t, at(i), m.Secret, merchantAddr)
		v, err := merchant.VerifyKey(ctx, m.Publishable)
		if err != nil || !v.Valid || v.Code != client.VerifyValid {
			t.Fatalf("replica %d: the merchant's verify of its pk after the outsider: %+v, %v", i, v, err)
		}
		if _, err := merchant.GetAPIKey(ctx, m.PublishableID); err != nil {
			t.Fatalf("replica %d: the merchant's secret key after the outsider: %v", i, err)
		}
	}

	// The pk's 403 reports the budget it spent: its address's.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, replicas[0].URL+"/api-keys/"+m.SecretID, nil)
	req.Header.Set("Authorization", "Bearer "+m.Publishable)
	res, err := (&http.Client{Transport: fromAddr{merchantAddr}}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = readAll(t, res)
	if res.StatusCode != 403 || res.Header.Get("RateLimit-Limit") != strconv.Itoa(pkFailLimit) {
		t.Fatalf("the pk's 403: %d, RateLimit-Limit %q; want 403 with the address budget's %d", res.StatusCode, res.Header.Get("RateLimit-Limit"), pkFailLimit)
	}
}

// TestBudgetAuthFailuresPerAddress: forged keys with valid checksums from one
// address get 401 until the address's failure budget is spent, then 429
// 42901; from then on the store is not asked, for forged and real keys alike,
// until the budget has room again. Other addresses are unaffected; missing
// tokens count; an IPv6 address shares its budget with its /64.
func TestBudgetAuthFailuresPerAddress(t *testing.T) {
	const limit = 4
	counter := newLookupCounter(t)
	m := metrics.New()
	env := testenv.New(t, testenv.Config{Store: counter, AuthFailureLimit: limit, TrustedProxies: []string{"127.0.0.0/8", "::1/128"}, Metrics: m})
	real := env.Bootstrap(acct)[apikey.Sandbox]

	const attacker = "203.0.113.7"
	start := time.Now()
	failed, ae, elapsed := untilLimited(t, 4*limit, 401, client.CodeInvalidCredentials, client.CodeTooManyAuthFailures, func(i int) error {
		tok := forged(t, []keys.Kind{keys.KindSecret, keys.KindPublishable}[i%2], i%3 == 0)
		if i%2 == 0 {
			_, err := clientFrom(t, env, tok, attacker).RegenerateAPIKey(ctx, real.SecretID)
			return err
		}
		_, err := clientFrom(t, env, tok, attacker).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
		return err
	})
	wantBurst(t, "forged keys", failed, limit, elapsed)
	if ae.RetryAfter < time.Second || ae.Details["retry_after_seconds"] == nil {
		t.Fatalf("42901 without Retry-After: %+v", ae)
	}
	// Until the failed 429, every forged key was looked up.
	if got := counter.n.Load(); got != int64(failed+1) {
		t.Fatalf("%d lookups for %d forged keys", got, failed+1)
	}
	// The bucket (full at the first request) has no room before this.
	blockedUntil := start.Add(time.Duration(failed-limit+1) * time.Second / limit)

	// Known to be over its budget: answered before the lookup, whatever it sends.
	before := counter.n.Load()
	var limited int
	for i := 0; i < 30; i++ {
		tok := forged(t, keys.KindSecret, true)
		if i == 29 {
			tok = real.Secret
		}
		_, err := clientFrom(t, env, tok, attacker).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
		if status, code := statusOf(t, err); status == 429 && code == client.CodeTooManyAuthFailures {
			limited++
		}
	}
	lookups := counter.n.Load() - before
	if time.Now().Before(blockedUntil) {
		if lookups != 0 || limited != 30 {
			t.Fatalf("an address over its failure budget: %d store lookups, %d of 30 answered 42901", lookups, limited)
		}
	} else {
		// A slow machine: the budget refilled meanwhile; each refill buys at
		// most one failure (a lookup) and one more lookup to learn it is spent.
		refills := int(time.Since(start).Seconds()*limit) + 1
		t.Logf("slow run (%v): %d lookups, %d × 42901 while blocked", time.Since(start), lookups, limited)
		if lookups > int64(2*refills) {
			t.Fatalf("%d store lookups for an address over its failure budget (%d refills)", lookups, refills)
		}
	}
	if got := rateLimitedCount(t, m, "client_address", "none"); got != float64(limited+1) {
		t.Fatalf("hsrcpay_rate_limited_total{budget=client_address} = %v, want %d", got, limited+1)
	}

	// Another address is unaffected, and its valid key works.
	other := clientFrom(t, env, forged(t, keys.KindSecret, true), "198.51.100.20")
	_, err := other.RegenerateAPIKey(ctx, real.SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
	if _, err := clientFrom(t, env, real.Secret, "198.51.100.20").CreateAPIKey(ctx, acct, newKeyReq("ok", client.Permissions{})); err != nil {
		t.Fatal(err)
	}

	// Missing tokens are failures too (the client refuses to send none: raw HTTP).
	noToken := &http.Client{Transport: fromAddr{"198.51.100.30"}}
	failed, _, elapsed = untilLimited(t, 4*limit, 401, client.CodeMissingCredentials, client.CodeTooManyAuthFailures, func(int) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/api-keys/"+real.SecretID+"/regenerate", nil)
		res, err := noToken.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return client.ParseError(res, readAll(t, res))
	})
	wantBurst(t, "missing tokens", failed, limit, elapsed)

	// IPv6: the budget is the /64's, not each address's (each address here fails once).
	failed, _, elapsed = untilLimited(t, 4*limit, 401, client.CodeInvalidCredentials, client.CodeTooManyAuthFailures, func(i int) error {
		_, err := clientFrom(t, env, forged(t, keys.KindSecret, true), fmt.Sprintf("2001:db8:1:2::%x", i+1)).RegenerateAPIKey(ctx, real.SecretID)
		return err
	})
	wantBurst(t, "one /64", failed, limit, elapsed)
	_, err = clientFrom(t, env, forged(t, keys.KindSecret, true), "2001:db8:1:3::1").RegenerateAPIKey(ctx, real.SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)

	// Once the budget has room again the address is served again, and its
	// next failure is a 401.
	time.Sleep(2 * time.Second / limit)
	if _, err := clientFrom(t, env, real.Secret, attacker).CreateAPIKey(ctx, acct, newKeyReq("back", client.Permissions{})); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	_, err = clientFrom(t, env, forged(t, keys.KindSecret, true), attacker).RegenerateAPIKey(ctx, real.SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
}

// TestBudgetChildKeysShareAccount: keys made by a key do not multiply its
// budget: all the account's keys together get at most the account's budget.
// A JWT spends only its subject's budget. The RateLimit-* headers report
// the tighter budget.
func TestBudgetChildKeysShareAccount(t *testing.T) {
	const accountLimit, children = 10, 5
	m := metrics.New()
	env := testenv.New(t, testenv.Config{
		RateLimits:    map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 1000},
		AccountLimits: map[apikey.Mode]int{apikey.Live: accountLimit, apikey.Sandbox: 1000},
		Metrics:       m,
	})
	parent := env.Bootstrap(acct)[apikey.Live]
	// Secret keys only: a publishable key's requests spend its presenter's
	// address budget, not its account's (TestBudgetPublishableKeySpendsPresenter).
	tokens := []string{parent.Secret}
	for i := 0; i < children; i++ {
		k, err := env.Client(parent.Secret).CreateAPIKey(ctx, acct, newKeyReq(fmt.Sprintf("child %d", i), client.Permissions{"account:api:key": {"create"}}))
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, k.Key)
	}
	time.Sleep(time.Second + 100*time.Millisecond) // the account's budget is full again

	// Every key at once, each well under its own budget (1000/s).
	const perKey = 6
	var allowed, limited atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for _, tok := range tokens {
		wg.Add(1)
		go func(c *client.Client) {
			defer wg.Done()
			for i := 0; i < perKey; i++ {
				_, err := c.RegenerateAPIKey(ctx, "key_budget0000")
				switch status, code := statusOf(t, err); {
				case status == 429 && code == client.CodeRateLimited:
					limited.Add(1)
				case status == 404 || status == 403: // through the budgets
					allowed.Add(1)
				default:
					t.Errorf("unexpected answer %d %d", status, code)
				}
			}
		}(env.Client(tok))
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := int64(len(tokens) * perKey)
	// The bucket holds accountLimit and refills at accountLimit per second.
	most := int64(accountLimit + int(elapsed.Seconds()*accountLimit) + 1)
	if allowed.Load() > most || allowed.Load() < accountLimit || allowed.Load()+limited.Load() != total {
		t.Fatalf("%d keys of one account: %d allowed, %d limited in %v; want at most %d allowed", len(tokens), allowed.Load(), limited.Load(), elapsed, most)
	}
	if got := rateLimitedCount(t, m, "account", "live"); got != float64(limited.Load()) {
		t.Fatalf("hsrcpay_rate_limited_total{budget=account} = %v, want %d", got, limited.Load())
	}

	// The headers report the account's budget, the tighter one (a 429 unless
	// a slow machine let a token refill since).
	res := rawRegenerate(t, env, tokens[len(tokens)-1]) //nolint:bodyclose // rawRegenerate closes the body
	if res.Header.Get("RateLimit-Limit") != strconv.Itoa(accountLimit) || res.Header.Get("RateLimit-Remaining") != "0" ||
		(res.StatusCode == 429) != (res.Header.Get("Retry-After") != "") || (res.StatusCode != 429 && res.StatusCode != 404) {
		t.Fatalf("over the account budget: %d, headers %v", res.StatusCode, res.Header)
	}
	// A JWT on the same account spends its subject's budget only.
	jwt := env.JWT.Sign(t, env.JWT.Claims("user_budget", []string{acct}, []string{"account:api:key:create"}, "live"))
	if _, err := env.Client(jwt).CreateAPIKey(ctx, acct, newKeyReq("by jwt", client.Permissions{})); err != nil {
		t.Fatalf("JWT limited by the account's budget: %v", err)
	}
	// Another account is unaffected.
	otherAcct := env.Bootstrap("acct_other")[apikey.Live]
	res = rawRegenerate(t, env, otherAcct.Secret) //nolint:bodyclose // rawRegenerate closes the body
	if res.StatusCode != 404 || res.Header.Get("RateLimit-Limit") != strconv.Itoa(accountLimit) {
		t.Fatalf("other account: %d, headers %v (the account budget, 10, is the tighter)", res.StatusCode, res.Header)
	}
	// Where the credential's budget is the tighter, the headers report it.
	sandbox := env.Bootstrap("acct_sb")[apikey.Sandbox]
	res = rawRegenerate(t, env, sandbox.Secret) //nolint:bodyclose // rawRegenerate closes the body
	if res.StatusCode != 404 || res.Header.Get("RateLimit-Limit") != "1000" || res.Header.Get("RateLimit-Remaining") != "999" {
		t.Fatalf("sandbox: %d, headers %v", res.StatusCode, res.Header)
	}
}

func readAll(t *testing.T, res *http.Response) []byte {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to its end, or failed reading: nothing left to report
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rawRegenerate sends a regenerate of an unknown key and returns the response (body closed).
func rawRegenerate(t *testing.T, env *testenv.Env, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/api-keys/key_budget0000/regenerate", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close() // only the status and headers are wanted
	return res
}

// TestBudgetsSharedAcrossReplicasRedis: two replicas on one store and one
// Redis share the failure budget of an address (and stop looking keys up
// for it) and the budget of an account.
func TestBudgetsSharedAcrossReplicasRedis(t *testing.T) {
	const failLimit, accountLimit = 4, 6
	counter := newLookupCounter(t)
	cfg := func() testenv.Config {
		return testenv.Config{
			Store:            counter,
			Limiter:          redisLimiter(t), // a client per replica
			TrustedProxies:   []string{"127.0.0.0/8", "::1/128"},
			AuthFailureLimit: failLimit,
			RateLimits:       map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 1000},
			AccountLimits:    map[apikey.Mode]int{apikey.Live: accountLimit, apikey.Sandbox: 1000},
		}
	}
	a, b := testenv.New(t, cfg()), testenv.New(t, cfg())
	replicas := []*testenv.Env{a, b}
	// Redis outlives the test: fresh names for the address and the account.
	run := time.Now().UnixNano()
	account := fmt.Sprintf("acct_r%d", run)
	m := a.Bootstrap(account)[apikey.Live]

	// One /64, a different address on each replica, until each replica has
	// answered 42901 once (then both know the address is over its budget).
	prefix := fmt.Sprintf("2001:db8:%x:%x", run>>16&0xffff, run&0xffff)
	start := time.Now()
	var failed int
	seen := map[int]bool{}
	for i := 0; len(seen) < 2; i++ {
		if i == 4*failLimit {
			t.Fatalf("no 42901 from both replicas after %d forged keys (%d × 401)", i, failed)
		}
		_, err := clientFrom(t, replicas[i%2], forged(t, keys.KindSecret, false), fmt.Sprintf("%s::%x", prefix, i+1)).RegenerateAPIKey(ctx, m.SecretID) //nolint:gosec // i ≥ 0, so i%2 is 0 or 1: both replicas
		switch status, code := statusOf(t, err); {
		case status == 401: // after a 429 only on a slow machine, once the budget refilled
			if len(seen) == 0 {
				failed++
			}
		case status == 429 && code == client.CodeTooManyAuthFailures:
			seen[i%2] = true
		default:
			t.Fatalf("forged key %d: %d %d", i, status, code)
		}
	}
	wantBurst(t, "two replicas sharing a failure budget", failed, failLimit, time.Since(start))
	blockedUntil := start.Add(time.Duration(failed-failLimit+1) * time.Second / failLimit)
	before := counter.n.Load()
	for i := 0; i < 10; i++ {
		_, err := clientFrom(t, replicas[i%2], forged(t, keys.KindSecret, false), prefix+"::99").RegenerateAPIKey(ctx, m.SecretID) //nolint:gosec // i ≥ 0, so i%2 is 0 or 1: both replicas
		if time.Now().Before(blockedUntil) {
			wantAPIError(t, err, 429, client.CodeTooManyAuthFailures)
		}
	}
	n := counter.n.Load() - before
	if time.Now().Before(blockedUntil) && n != 0 {
		t.Fatalf("%d lookups for an address both replicas know to be blocked", n)
	}
	// A slow machine: each refill buys one failure and a lookup per replica.
	if refills := int(time.Since(start).Seconds()*failLimit) + 1; n > int64(3*refills) {
		t.Fatalf("%d lookups for a blocked address (%d refills)", n, refills)
	}

	// The account's budget: its secret on either replica. (Its publishable
	// key's requests spend the presenter's address budget instead.)
	var allowed, limited int
	start = time.Now()
	for i := 0; i < 2*accountLimit; i++ {
		_, err := clientFrom(t, replicas[i%2], m.Secret, "198.51.100.40").RegenerateAPIKey(ctx, "key_budget0000") //nolint:gosec // i ≥ 0, so i%2 is 0 or 1: both replicas
		switch status, code := statusOf(t, err); {
		case status == 429 && code == client.CodeRateLimited:
			limited++
		case status == 404 || status == 403:
			allowed++
		default:
			t.Fatalf("account budget: %d %d", status, code)
		}
	}
	most := accountLimit + int(time.Since(start).Seconds()*accountLimit) + 1
	if allowed < accountLimit || allowed > most || limited == 0 {
		t.Fatalf("two replicas sharing a %d/s account budget: %d allowed, %d limited (at most %d)", accountLimit, allowed, limited, most)
	}
}

// RateLimit-* headers come with every answer past authentication — success,
// 403, 404, 400 — and with none before it (401, unknown route), as the
// README says.
func TestRateLimitHeadersPastAuthentication(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	for _, c := range []struct {
		method, path, token string
		status              int
		headers             bool
	}{
		{"GET", "/v1/api-keys/" + m.SecretID, m.Secret, 200, true},
		{"GET", "/v1/api-keys/key_doesnotexist0000", m.Secret, 404, true},
		{"GET", "/v1/api-keys/nope", m.Secret, 400, true},
		{"GET", "/v1/api-keys/" + m.SecretID, m.Publishable, 403, true},
		{"GET", "/v1/api-keys/" + m.SecretID, "sk_test_nope", 401, false},
		{"GET", "/v1/nope", m.Secret, 404, false},
	} {
		req, _ := http.NewRequestWithContext(ctx, c.method, env.Root+c.path, nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		res, b := hxDo(t, http.DefaultClient, req) //nolint:bodyclose // hxDo reads and closes the body
		has := res.Header.Get("RateLimit-Limit") != "" && res.Header.Get("RateLimit-Remaining") != "" && res.Header.Get("RateLimit-Reset") != ""
		if res.StatusCode != c.status || has != c.headers {
			t.Errorf("%s %s: %d (RateLimit-* %v), want %d (%v): %.200s", c.method, c.path, res.StatusCode, has, c.status, c.headers, b)
		}
	}
}
