package server_test

// The credential cache (internal/credcache) never lets a key work longer
// than the documented bound: a change is refused at once on the replica that
// made it, within 1 s on the others when they share Redis, within the TTL
// otherwise; and time (expiry, grace) is judged at every use, cached or not.

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/credcache"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

// deadRedisURL names a port nothing listens on: connections are refused.
const deadRedisURL = "redis://127.0.0.1:1/0"

// redisURL is the shared test Redis (testredis: HSRCPAY_TEST_REDIS_URL),
// skipping (or failing in CI) without it.
func redisURL(t *testing.T) string {
	t.Helper()
	return testredis.URL(t)
}

// probe sends an authenticated read of a key that does not exist: 404 when
// the secret authenticates and may read keys, 403 when it authenticates
// without that permission (a publishable key), 401 when it is refused.
func probe(t *testing.T, env *testenv.Env, secret string) (int, client.ErrorCode) {
	t.Helper()
	_, err := getKey(t, env.Client(secret), "key_probe0000000000")
	var ae *client.Error
	if !asAPIError(err, &ae) {
		t.Fatalf("probe: %v", err)
	}
	return ae.StatusCode, ae.Code
}

func authenticates(t *testing.T, env *testenv.Env, secret string) bool {
	t.Helper()
	status, _ := probe(t, env, secret)
	return status != 401
}

// warm makes env's cache hold secret (the second use is a hit).
func warm(t *testing.T, env *testenv.Env, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for i := 0; i < 2; i++ {
			if !authenticates(t, env, s) {
				t.Fatal("a working secret is refused")
			}
		}
	}
}

// refusedWithin polls env with secret every millisecond until it is refused,
// failing once bound has passed since since; it returns how long it took.
func refusedWithin(t *testing.T, env *testenv.Env, secret string, since time.Time, bound time.Duration) time.Duration {
	t.Helper()
	for authenticates(t, env, secret) {
		if time.Since(since) > bound {
			t.Fatalf("still authenticates %v after the change; the bound is %v", time.Since(since).Round(time.Millisecond), bound)
		}
		time.Sleep(time.Millisecond)
	}
	return time.Since(since)
}

// counter reads one series of a counter (0 when absent); label "" takes the
// first series, of a counter or a gauge.
func counter(t *testing.T, m *metrics.Metrics, name, label, value string) float64 {
	t.Helper()
	c, g, _ := metricSeries(t, m, name, label, value)
	if label == "" {
		return c + g
	}
	return c
}

// metricSeries reads the series of metric name whose label has value (label "":
// the first series) as a counter and as a gauge (0 for what it is not),
// and whether there is one.
func metricSeries(t *testing.T, m *metrics.Metrics, name, label, value string) (c, g float64, ok bool) {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if label == "" {
				return mt.GetCounter().GetValue(), mt.GetGauge().GetValue(), true
			}
			for _, l := range mt.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return mt.GetCounter().GetValue(), mt.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, 0, false
}

func cacheHits(t *testing.T, m *metrics.Metrics) float64 {
	return counter(t, m, "hsrcpay_credential_cache_lookups_total", "result", "hit")
}

// TestCredentialCacheChangesTakeEffectAtOnce: on the replica that makes a
// change, the cache never delays it (the TTL here is a minute, so only the
// invalidation can explain each refusal).
func TestCredentialCacheChangesTakeEffectAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		m := metrics.New()
		cfg.Metrics, cfg.CredentialCacheTTL = m, time.Minute
		env := testenv.New(t, cfg)
		mk := env.Bootstrap(acct)[apikey.Sandbox]
		admin := env.Client(mk.Secret)
		read := client.Permissions{"account:api:key": {"read"}}

		deleted := customKey(t, env, mk, "to delete", read, nil)
		disabled := customKey(t, env, mk, "to disable", read, nil)
		expiring := customKey(t, env, mk, "to expire", read, nil)
		before := cacheHits(t, m)
		warm(t, env, deleted.Key, disabled.Key, expiring.Key, mk.Publishable)
		if cacheHits(t, m) < before+4 {
			t.Fatal("the cache served no hits: this test would prove nothing")
		}

		if _, err := deleteKey(t, admin, deleted.ID); err != nil {
			t.Fatal(err)
		}
		refusedNow(t, env, deleted.Key)

		if _, err := updateKey(t, admin, disabled.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
		refusedNow(t, env, disabled.Key)
		warm(t, env, mk.Secret) // a cached INACTIVE snapshot must not outlive the key's enabling either
		refusedNow(t, env, disabled.Key)
		if _, err := updateKey(t, admin, disabled.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)}); err != nil {
			t.Fatal(err)
		}
		if !authenticates(t, env, disabled.Key) {
			t.Fatal("an enabled key is refused")
		}

		// Rotation without grace: the old secret (cached) stops at once.
		pub, err := admin.RegenerateAPIKey(ctx, mk.PublishableID)
		if err != nil {
			t.Fatal(err)
		}
		if authenticates(t, env, mk.Publishable) {
			t.Fatal("a publishable secret rotated away without grace still authenticates")
		}
		if s, _ := probe(t, env, pub.Key); s != 403 {
			t.Fatalf("the new publishable secret: %d, want 403 (authenticated, may not read keys)", s)
		}
		// The caller rotating itself: its own cached secret stops with the response.
		self, err := admin.RegenerateAPIKey(ctx, mk.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		refusedNow(t, env, mk.Secret)
		admin = env.Client(self.Key)

		// An earlier expiry replaces the cached snapshot (which had none).
		exp := env.Clock.Now().Add(time.Hour)
		if _, err := updateKey(t, admin, expiring.ID, client.UpdateAPIKeyRequest{ExpiresAt: &exp}); err != nil {
			t.Fatal(err)
		}
		warm(t, env, expiring.Key)
		env.Clock.Advance(2 * time.Hour)
		if s, code := probe(t, env, expiring.Key); s != 401 || code != client.CodeExpiredCredentials {
			t.Fatalf("a key past its new expiry: %d %d, want 401 %d", s, code, client.CodeExpiredCredentials)
		}
		// Permissions cannot change through the API (a key is replaced, not
		// widened); a use case that changed them would call Changed like these.
	})
}

// TestCredentialCacheNeverExtendsLife: expiry and the previous secret's
// grace are judged at each use against the clock, on the cached snapshot:
// the refusals below are cache hits.
func TestCredentialCacheNeverExtendsLife(t *testing.T) {
	m := metrics.New()
	env := testenv.New(t, testenv.Config{Metrics: m, CredentialCacheTTL: time.Minute})
	mk := env.Bootstrap(acct)[apikey.Sandbox]
	exp := env.Clock.Now().Add(10 * time.Minute)
	k := customKey(t, env, mk, "short-lived", client.Permissions{"account:api:key": {"read"}}, &exp)
	rotated, err := env.Client(mk.Secret).RegenerateAPIKey(ctx, mk.PublishableID, client.WithGracePeriod(5*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	warm(t, env, k.Key, mk.Publishable, rotated.Key)

	env.Clock.Advance(6 * time.Minute) // past the grace, before the expiry
	hits := cacheHits(t, m)
	if authenticates(t, env, mk.Publishable) {
		t.Fatal("a previous secret past its grace period authenticates from the cache")
	}
	if !authenticates(t, env, rotated.Key) || !authenticates(t, env, k.Key) {
		t.Fatal("current secrets refused")
	}
	env.Clock.Advance(5 * time.Minute) // past the expiry
	if s, code := probe(t, env, k.Key); s != 401 || code != client.CodeExpiredCredentials {
		t.Fatalf("an expired key: %d %d, want 401 %d", s, code, client.CodeExpiredCredentials)
	}
	if got := cacheHits(t, m) - hits; got != 4 {
		t.Fatalf("%v cache hits for the 4 probes; want each judged on a cached snapshot", got)
	}
}

// A key disabled, revoked, rotated away or shortened through one replica is
// refused by the other within 1 s (both share PostgreSQL and Redis; the
// change travels on Redis Pub/Sub), and its name is free there.
func TestRevocationAcrossReplicas(t *testing.T) {
	rurl := redisURL(t)
	url := storetest.FreshPostgresDB(t)
	mb := metrics.New()
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: time.Minute})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: time.Minute, Metrics: mb})
	a.WaitCredentialCacheServing()
	b.WaitCredentialCacheServing()
	m := a.Bootstrap(acct)[apikey.Sandbox]
	admin := a.Client(m.Secret)
	read := client.Permissions{"account:api:key": {"read"}}
	disabled := customKey(t, a, m, "to disable", read, nil)
	revoked := customKey(t, a, m, "to revoke", read, nil)
	shortened := customKey(t, a, m, "to shorten", read, nil)
	warm(t, b, disabled.Key, revoked.Key, shortened.Key, m.Publishable)
	if cacheHits(t, mb) == 0 {
		t.Fatal("replica b's cache served no hits: this test would prove nothing")
	}
	const bound = time.Second

	if _, err := updateKey(t, admin, disabled.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
		t.Fatal(err)
	}
	t.Logf("disabled: refused by the other replica after %v", refusedWithin(t, b, disabled.Key, time.Now(), bound))

	if _, err := deleteKey(t, admin, revoked.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("deleted: refused by the other replica after %v", refusedWithin(t, b, revoked.Key, time.Now(), bound))

	if _, err := admin.RegenerateAPIKey(ctx, m.PublishableID); err != nil {
		t.Fatal(err)
	}
	t.Logf("rotated without grace: refused by the other replica after %v", refusedWithin(t, b, m.Publishable, time.Now(), bound))

	exp := a.Clock.Now().Add(time.Hour)
	if _, err := updateKey(t, admin, shortened.ID, client.UpdateAPIKeyRequest{ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	b.Clock.Advance(2 * time.Hour) // b judges the new expiry, once it has the new snapshot
	t.Logf("expiry moved earlier: refused by the other replica after %v", refusedWithin(t, b, shortened.Key, time.Now(), bound))

	if _, err := b.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("to revoke", client.Permissions{})); err != nil {
		t.Fatalf("the revoked key's name on the other replica: %v", err)
	}
	if got := counter(t, mb, "hsrcpay_credential_cache_invalidations_total", "origin", "remote"); got < 4 {
		t.Fatalf("replica b received %v invalidations, want at least 4", got)
	}
}

// TestCredentialCacheBoundWithoutRedis: when a change cannot be announced,
// the TTL bounds how long another replica may still accept the key; a
// replica that cannot hear announcements does not use its cache at all.
func TestCredentialCacheBoundWithoutRedis(t *testing.T) {
	const ttl = 400 * time.Millisecond
	// Polling and scheduling on a busy machine: the entry expires at ttl,
	// the poll that sees it may come a little later.
	const slack = 400 * time.Millisecond
	read := client.Permissions{"account:api:key": {"read"}}
	check := func(t *testing.T, a, b *testenv.Env) {
		t.Helper()
		m := a.Bootstrap(acct)[apikey.Sandbox]
		k := customKey(t, a, m, "to disable", read, nil)
		warm(t, b, k.Key)
		start := time.Now()
		if _, err := updateKey(t, a.Client(m.Secret), k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
		t.Logf("refused by the other replica after %v (TTL %v)", refusedWithin(t, b, k.Key, start, ttl+slack), ttl)
	}

	t.Run("no Redis: each replica alone", func(t *testing.T) {
		url := storetest.FreshPostgresDB(t)
		a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), CredentialCacheTTL: ttl})
		b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), CredentialCacheTTL: ttl})
		check(t, a, b)
	})
	t.Run("the changing replica cannot reach Redis", func(t *testing.T) {
		rurl := redisURL(t)
		url := storetest.FreshPostgresDB(t)
		ma := metrics.New()
		a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: deadRedisURL, CredentialCacheTTL: ttl, Metrics: ma})
		b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: ttl})
		b.WaitCredentialCacheServing()
		check(t, a, b)
		if got := counter(t, ma, "hsrcpay_credential_cache_publish_errors_total", "", ""); got != 1 {
			t.Fatalf("%v publish errors counted, want 1", got)
		}
	})
	t.Run("the other replica cannot reach Redis: it bypasses its cache", func(t *testing.T) {
		rurl := redisURL(t)
		url := storetest.FreshPostgresDB(t)
		mb := metrics.New()
		a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: time.Minute})
		b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: deadRedisURL, CredentialCacheTTL: time.Minute, Metrics: mb})
		m := a.Bootstrap(acct)[apikey.Sandbox]
		k := customKey(t, a, m, "to disable", read, nil)
		warm(t, b, k.Key)
		if b.Server.CredentialCacheServing() || cacheHits(t, mb) != 0 {
			t.Fatal("a replica without its invalidation subscription serves from its cache")
		}
		if _, err := updateKey(t, a.Client(m.Secret), k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
		refusedNow(t, b, k.Key)
	})
}

// TestKeyChangesAnnouncedOnlyAfterCommit: a change whose unit of work rolls
// back (a write or the audit append fails, or the policy refuses) drops
// nothing and announces nothing; a committed one does both.
//
// The Redis half is its own subtest, so that without Redis it shows as a
// skip (a failure under HSRCPAY_REQUIRE_REDIS=1) instead of a silent pass of
// the local half alone.
func TestKeyChangesAnnouncedOnlyAfterCommit(t *testing.T) {
	t.Run("local", func(t *testing.T) { keyChangesAnnouncedOnlyAfterCommit(t, false) })
	t.Run("redis", func(t *testing.T) { keyChangesAnnouncedOnlyAfterCommit(t, true) })
}

func keyChangesAnnouncedOnlyAfterCommit(t *testing.T, withRedis bool) {
	inner, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flaky := &hxFlakyStore{Store: inner}
	m := metrics.New()
	cfg := testenv.Config{Store: flaky, Metrics: m}
	var sub *redis.PubSub
	if withRedis {
		cfg.RedisURL = redisURL(t)
		rdb := redis.NewClient(testredis.Options(t))
		t.Cleanup(func() { _ = rdb.Close() }) // only frees its connections
		sub = rdb.Subscribe(ctx, credcache.Channel)
		t.Cleanup(func() { _ = sub.Close() }) // ends the test's subscription
		if _, err := sub.Receive(ctx); err != nil {
			t.Fatalf("subscribe: %v", err)
		}
	}
	env := testenv.New(t, cfg)
	mk := env.Bootstrap(acct)[apikey.Sandbox]
	admin := env.Client(mk.Secret)
	k := customKey(t, env, mk, "target", client.Permissions{}, nil)
	local := func() float64 {
		return counter(t, m, "hsrcpay_credential_cache_invalidations_total", "origin", "local")
	}
	if local() != 0 {
		t.Fatal("creating keys invalidated something")
	}

	flaky.state.Store(hxWritesDown)
	_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)})
	wantAPIError(t, err, 500, client.CodeInternal)
	flaky.state.Store(hxAuditDown) // the key row was written, then the unit failed
	_, err = admin.RegenerateAPIKey(ctx, mk.PublishableID)
	wantAPIError(t, err, 500, client.CodeInternal)
	_, err = deleteKey(t, admin, k.ID)
	wantAPIError(t, err, 500, client.CodeInternal)
	flaky.state.Store(hxUp)
	// Refused inside the unit: managed keys are never deleted. By the managed
	// secret key, which has power over it (a weaker key is refused earlier,
	// 403, since writes authorize first).
	_, err = deleteKey(t, admin, mk.PublishableID)
	wantAPIError(t, err, 422, client.CodeManagedKeyNotDeletable)
	if got := local(); got != 0 {
		t.Fatalf("%v invalidations for changes that rolled back", got)
	}

	if _, err := deleteKey(t, admin, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := local(); got != 1 {
		t.Fatalf("%v invalidations for one committed change", got)
	}
	if !withRedis {
		return
	}
	// Redis delivers in publish order: the committed change's message comes
	// after any the rolled-back ones would have sent.
	for {
		msg, err := sub.ReceiveTimeout(ctx, 5*time.Second)
		if err != nil {
			t.Fatalf("no announcement of the committed change: %v", err)
		}
		pm, ok := msg.(*redis.Message)
		if !ok {
			continue
		}
		switch {
		case pm.Payload == "test:"+k.ID:
			return
		case strings.HasSuffix(pm.Payload, ":"+mk.PublishableID), strings.HasSuffix(pm.Payload, ":"+mk.SecretID):
			t.Fatalf("announced a change that rolled back: %s", pm.Payload)
		}
		// other tests' servers share the channel: not ours
	}
}
