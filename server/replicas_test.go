package server_test

import (
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// openPostgres opens a fresh PostgreSQL database (skipping, or failing in
// CI, when PostgreSQL is down); every call on the same URL is a new pool,
// as a separate replica would have.
func openPostgres(t *testing.T, url string) store.Store {
	t.Helper()
	st, err := postgres.Open(ctx, url)
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	return st
}

// eachStore runs f against SQLite and against PostgreSQL.
func eachStore(t *testing.T, f func(t *testing.T, cfg testenv.Config)) {
	t.Run("sqlite", func(t *testing.T) { f(t, testenv.Config{}) })
	t.Run("postgres", func(t *testing.T) {
		f(t, testenv.Config{Store: openPostgres(t, storetest.FreshPostgresDB(t))})
	})
}

func TestConcurrentRegenerate(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		const n = 50
		type result struct {
			key     string
			updated time.Time
		}
		results := make([]result, n)
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				k, err := c.RegenerateAPIKey(ctx, m.PublishableID)
				if err != nil {
					errs <- err
					return
				}
				results[i] = result{k.Key, k.UpdatedAt}
			}(i)
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("concurrent regenerate failed: %v", err)
		}
		distinct := map[string]bool{}
		for _, r := range results {
			distinct[r.key] = true
		}
		if len(distinct) != n {
			t.Fatalf("%d distinct secrets from %d regenerates", len(distinct), n)
		}
		// Exactly one secret authenticates: the last one committed.
		sort.Slice(results, func(i, j int) bool { return results[i].updated.Before(results[j].updated) })
		var working []string
		for _, r := range append(results, result{key: m.Publishable}) {
			_, err := env.Client(r.key).RegenerateAPIKey(ctx, m.PublishableID)
			ae := new(client.Error)
			if asAPIError(err, &ae) && ae.Code == client.CodePublishableKeyForbidden {
				working = append(working, r.key) // authenticated, then refused as publishable
			} else if ae.StatusCode != 401 {
				t.Fatalf("unexpected answer for an old secret: %v", err)
			}
		}
		if len(working) != 1 || working[0] != results[n-1].key {
			t.Fatalf("%d secrets authenticate after the race; want only the last committed", len(working))
		}
	})
}

func TestConcurrentCreates(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Live]
		c := env.Client(m.Secret)
		const n = 40
		var mu sync.Mutex
		ids, secrets := map[string]bool{}, map[string]bool{}
		created, conflicts := 0, 0
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(2)
			go func(i int) { // distinct names: all succeed
				defer wg.Done()
				k, err := c.CreateAPIKey(ctx, acct, newKeyReq(fmt.Sprintf("key %d", i), client.Permissions{}))
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("create %d: %v", i, err)
					return
				}
				ids[k.ID], secrets[k.Key] = true, true
			}(i)
			go func() { // one name: exactly one succeeds
				defer wg.Done()
				_, err := c.CreateAPIKey(ctx, acct, newKeyReq("contested", client.Permissions{}))
				mu.Lock()
				defer mu.Unlock()
				ae := new(client.Error)
				switch {
				case err == nil:
					created++
				case asAPIError(err, &ae) && ae.Code == client.CodeDuplicateName:
					conflicts++
				default:
					t.Errorf("contested create: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(ids) != n || len(secrets) != n || created != 1 || conflicts != n-1 {
			t.Fatalf("ids %d secrets %d created %d conflicts %d", len(ids), len(secrets), created, conflicts)
		}
	})
}

// redisLimiter returns a Redis-backed limiter, skipping (or failing in CI) without Redis.
func redisLimiter(t *testing.T) ratelimit.Limiter {
	t.Helper()
	lim, rdb, err := ratelimit.NewRedis(redisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() }) // only frees its connection pool
	return lim
}

// TestTwoReplicas runs two servers, each with its own connection pool, on one
// PostgreSQL database and one Redis, as behind a load balancer.
func TestTwoReplicas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	lim := redisLimiter(t)
	limits := map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 4}
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim, RateLimits: limits})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), Limiter: lim, RateLimits: limits})
	m := a.Bootstrap(acct)

	// A key rotated through one replica is refused by the other at once.
	k, err := a.Client(m[apikey.Live].Secret).RegenerateAPIKey(ctx, m[apikey.Live].SecretID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Client(m[apikey.Live].Secret).RegenerateAPIKey(ctx, m[apikey.Live].SecretID)
	wantAPIError(t, err, 401, client.CodeInvalidCredentials)
	if _, err := b.Client(k.Key).CreateAPIKey(ctx, acct, newKeyReq("via b", client.Permissions{})); err != nil {
		t.Fatalf("new secret refused by the other replica: %v", err)
	}

	// last_used_* moves forward whichever replica flushes last.
	if _, err := a.Client(k.Key).CreateAPIKey(ctx, acct, newKeyReq("via a", client.Permissions{})); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond)
	if _, err := b.Client(k.Key).CreateAPIKey(ctx, acct, newKeyReq("via b again", client.Permissions{})); err != nil {
		t.Fatal(err)
	}
	b.FlushUsage() // newer use first
	a.FlushUsage() // older use second: must not win
	got, err := a.Store.Repo(apikey.Live).GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	newest, _ := b.Server.Usage.Pending(apikey.Live, k.ID) // flushed: nothing pending
	if got.LastUsedAt == nil || newest.At != (time.Time{}) {
		t.Fatalf("last_used_at = %v", got.LastUsedAt)
	}
	if a2, _ := a.Store.Repo(apikey.Live).GetKey(ctx, k.ID); a2.LastUsedAt.Before(got.LastUsedAt.Add(-time.Millisecond)) {
		t.Fatal("older use overwrote the newer one")
	}

	// The sandbox budget (4/s) is shared: 2 requests on each replica use it up.
	sb := m[apikey.Sandbox]
	var limited int
	for i := 0; i < 6; i++ {
		env := a
		if i%2 == 1 {
			env = b
		}
		_, err := env.Client(sb.Secret).RegenerateAPIKey(ctx, "key_none")
		ae := new(client.Error)
		if asAPIError(err, &ae) && ae.StatusCode == 429 {
			limited++
		}
	}
	if limited < 2 {
		t.Fatalf("%d of 6 requests limited across replicas sharing a 4/s budget; want at least 2", limited)
	}
}

// TestRevocationAcrossReplicas (two replicas, a credential cache each, on one
// PostgreSQL and one Redis) is in credential_cache_test.go.
