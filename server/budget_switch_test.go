package server_test

// A switch between the shared (Redis) and the local budget must not start a
// fresh budget: Redis dropping right after a credential spent its second's
// budget, or coming back right after it spent it locally, must not let
// another full budget through in that second (2× the limit).

import (
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

func TestBudgetCarriedAcrossRedisSwitch(t *testing.T) {
	// Skips without Redis, fails without it under HSRCPAY_REQUIRE_REDIS=1.
	proxy := newFaultProxy(t, testredis.Addr(t))
	shared, rdb, err := ratelimit.NewRedis(testredis.Via(t, proxy.Addr))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() }) // only frees its connections
	var fallbacks atomic.Int64
	lim := &ratelimit.Fallback{Primary: shared, Secondary: ratelimit.NewMemory(), Cooldown: 100 * time.Millisecond,
		OnFallback: func(error) { fallbacks.Add(1) }}
	const limit = 40
	env := testenv.New(t, testenv.Config{Limiter: lim, RateLimits: map[apikey.Mode]int{apikey.Live: limit, apikey.Sandbox: limit}})
	const acctB = "acct_budget_switch"
	m := env.Bootstrap(acctB)[apikey.Sandbox]
	cl := env.Client(m.Secret)
	// burst sends n requests back to back and counts those let through.
	burst := func(n int) int {
		t.Helper()
		ok := 0
		for range n {
			_, err := cl.GetAPIKey(ctx, m.PublishableID)
			var ce *client.Error
			switch {
			case err == nil:
				ok++
			case errors.As(err, &ce) && ce.StatusCode == http.StatusTooManyRequests:
			default:
				t.Fatalf("get: %v", err)
			}
		}
		return ok
	}
	// Refill tokens can arrive while a burst runs (limit per second); a fresh
	// budget would let about limit through.
	const carried = limit / 4

	// Shared budget spent, then Redis drops: the local budget is spent too.
	if got := burst(2 * limit); got < limit-2 || got > limit+carried {
		t.Fatalf("Redis up: %d of %d passed, want about %d", got, 2*limit, limit)
	}
	proxy.Stop()
	afterDrop := burst(limit)
	if fallbacks.Load() == 0 {
		t.Fatal("the limiter never fell back: the proxy did not stop Redis")
	}
	if afterDrop > carried {
		t.Errorf("right after Redis dropped, %d of %d passed: the local budget started fresh", afterDrop, limit)
	}

	// A second later, the local budget is spent while Redis is down; Redis
	// comes back with its budget full: the local spend still counts.
	time.Sleep(1100 * time.Millisecond)
	if got := burst(2 * limit); got < limit-2 || got > limit+carried {
		t.Fatalf("Redis down: %d of %d passed, want about %d (the local budget)", got, 2*limit, limit)
	}
	proxy.Start()
	time.Sleep(150 * time.Millisecond) // past the cooldown: Redis is asked again
	before := fallbacks.Load()
	afterReturn := burst(limit)
	if fallbacks.Load() != before {
		t.Fatal("Redis still failing after it came back")
	}
	if afterReturn > carried {
		t.Errorf("right after Redis came back, %d of %d passed: the shared budget started fresh", afterReturn, limit)
	}

	// And the shared budget works as before once the second has passed.
	time.Sleep(1100 * time.Millisecond)
	if got := burst(2 * limit); got < limit-2 || got > limit+carried {
		t.Errorf("Redis back: %d of %d passed, want about %d", got, 2*limit, limit)
	}
	t.Logf("limit %d/s: passed right after Redis dropped %d, right after it came back %d (a fresh budget would pass ~%d)",
		limit, afterDrop, afterReturn, limit)
}
