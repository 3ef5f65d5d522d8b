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
	var lastErr atomic.Value
	// Each ask of Redis while it is down is a failed dial; after PoolSize of
	// them in a row (20 on 2 cores) go-redis stops dialling and probes once a
	// second instead, so Redis would stay unused for up to a second after it
	// came back. One ask per 250 ms cooldown keeps the outage below well
	// under that even when requests are slow (the race detector).
	const cooldown = 250 * time.Millisecond
	lim := &ratelimit.Fallback{Primary: shared, Secondary: ratelimit.NewMemory(), Cooldown: cooldown,
		OnFallback: func(err error) { fallbacks.Add(1); lastErr.Store(err.Error()) }}
	const limit = 40
	env := testenv.New(t, testenv.Config{Limiter: lim, RateLimits: map[apikey.Mode]int{apikey.Live: limit, apikey.Sandbox: limit}})
	const acctB = "acct_budget_switch"
	m := env.Bootstrap(acctB)[apikey.Sandbox]
	cl := env.Client(m.Secret)
	// burst sends n requests back to back and counts those let through;
	// it returns when it ended too.
	burst := func(n int) (int, time.Time) {
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
		return ok, time.Now()
	}
	// refilled is how many tokens a budget of limit per second gains in d:
	// the bounds below count them from the time measured, not from an
	// assumed request speed (a slow machine, or the race detector, makes a
	// burst of 2*limit requests last long enough for many to arrive).
	refilled := func(d time.Duration) int { return int(d.Seconds() * limit) }
	// The margin on top: a fresh budget would let about limit more through.
	const carried = limit / 4

	// Shared budget spent, then Redis drops: the local budget is spent too.
	start := time.Now()
	got, end := burst(2 * limit)
	if most := limit + refilled(end.Sub(start)) + carried; got < limit-2 || got > most {
		t.Fatalf("Redis up: %d of %d passed in %v, want %d to %d", got, 2*limit, end.Sub(start), limit-2, most)
	}
	spent := end
	proxy.Stop()
	afterDrop, end := burst(limit)
	if fallbacks.Load() == 0 {
		t.Fatal("the limiter never fell back: the proxy did not stop Redis")
	}
	if most := refilled(end.Sub(spent)) + carried; afterDrop > most {
		t.Errorf("right after Redis dropped, %d of %d passed (want at most %d: what refilled in %v plus the margin): the local budget started fresh",
			afterDrop, limit, most, end.Sub(spent))
	}

	// A second later, the local budget is spent while Redis is down; Redis
	// comes back with its budget full: the local spend still counts.
	time.Sleep(1100 * time.Millisecond)
	start = time.Now()
	got, end = burst(2 * limit)
	if most := limit + refilled(end.Sub(start)) + carried; got < limit-2 || got > most {
		t.Fatalf("Redis down: %d of %d passed in %v, want %d to %d (the local budget)", got, 2*limit, end.Sub(start), limit-2, most)
	}
	spent = end
	proxy.Start()
	// Redis is back once its client reaches it (at once, unless go-redis
	// stopped dialling: then within its next probe), and is asked again
	// once the limiter's cooldown since the last failure (at most spent) is over.
	for deadline := time.Now().Add(5 * time.Second); rdb.Ping(ctx).Err() != nil; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Redis unreachable through the restarted proxy: %v", rdb.Ping(ctx).Err())
		}
	}
	time.Sleep(time.Until(spent.Add(cooldown + 50*time.Millisecond)))
	before := fallbacks.Load()
	afterReturn, end := burst(limit)
	if fallbacks.Load() != before {
		t.Fatalf("Redis still failing after it came back: %v", lastErr.Load())
	}
	if most := refilled(end.Sub(spent)) + carried; afterReturn > most {
		t.Errorf("right after Redis came back, %d of %d passed (want at most %d: what refilled in %v plus the margin): the shared budget started fresh",
			afterReturn, limit, most, end.Sub(spent))
	}

	// And the shared budget works as before once the second has passed.
	time.Sleep(1100 * time.Millisecond)
	start = time.Now()
	got, end = burst(2 * limit)
	if most := limit + refilled(end.Sub(start)) + carried; got < limit-2 || got > most {
		t.Errorf("Redis back: %d of %d passed in %v, want %d to %d", got, 2*limit, end.Sub(start), limit-2, most)
	}
	t.Logf("limit %d/s: passed right after Redis dropped %d, right after it came back %d (a fresh budget would pass ~%d more)",
		limit, afterDrop, afterReturn, limit)
}
