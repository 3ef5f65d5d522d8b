package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/testredis"
)

func TestMemoryBudget(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	for i := 0; i < 3; i++ {
		r, _ := m.Allow(context.Background(), "k", 3)
		if !r.Allowed || r.Remaining != 2-i || r.Limit != 3 {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	r, _ := m.Allow(context.Background(), "k", 3)
	if r.Allowed || r.RetryAfter <= 0 || r.RetryAfter > time.Second {
		t.Fatalf("4th request: %+v", r)
	}
	if r2, _ := m.Allow(context.Background(), "other", 3); !r2.Allowed {
		t.Fatal("budgets must be per key")
	}
	now = now.Add(time.Second)
	if r, _ := m.Allow(context.Background(), "k", 3); !r.Allowed {
		t.Fatalf("after a second: %+v", r)
	}
	// Idle keys are forgotten, so the map stays bounded.
	now = now.Add(2 * idleTTL)
	if _, err := m.Allow(context.Background(), "fresh", 3); err != nil {
		t.Fatal(err)
	}
	if len(m.buckets) != 1 {
		t.Fatalf("%d buckets kept", len(m.buckets))
	}
}

// A rate of any window (a key's own limit, issue 22): 3 per minute is a
// burst of 3 refilled one every 20 s; its bucket outlives the minute of
// idleness after which per-second buckets are forgotten.
func TestMemoryRate(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	perDay := Rate{N: 2, Per: 24 * time.Hour}
	for i := 0; i < 3; i++ {
		r, _ := m.AllowRate(context.Background(), "k", Rate{N: 3, Per: time.Minute})
		if !r.Allowed || r.Limit != 3 {
			t.Fatalf("request %d: %+v", i, r)
		}
	}
	r, _ := m.AllowRate(context.Background(), "k", Rate{N: 3, Per: time.Minute})
	if r.Allowed || r.RetryAfter < 19*time.Second || r.RetryAfter > 20*time.Second {
		t.Fatalf("4th request: %+v", r)
	}
	for i := 0; i < 2; i++ {
		if r, _ := m.AllowRate(context.Background(), "day", perDay); !r.Allowed {
			t.Fatalf("per day, request %d: %+v", i, r)
		}
	}
	now = now.Add(2 * idleTTL)
	if _, err := m.Allow(context.Background(), "fresh", 3); err != nil { // collects idle buckets
		t.Fatal(err)
	}
	if r, _ := m.AllowRate(context.Background(), "day", perDay); r.Allowed || r.RetryAfter < 11*time.Hour {
		t.Fatalf("a per-day bucket refilled after 2 idle minutes: %+v", r)
	}
}

// redisURL returns the test Redis (testredis: HSRCPAY_TEST_REDIS_URL),
// skipping (or failing in CI) when it is down.
func redisURL(t *testing.T) string {
	t.Helper()
	return testredis.URL(t)
}

// TestRedisRate: a rate of any window, shared by two clients.
func TestRedisRate(t *testing.T) {
	url := redisURL(t)
	a, ca, err := NewRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ca.Close() }() // only frees its connection pool
	b, cb, _ := NewRedis(url)
	defer func() { _ = cb.Close() }()
	key := fmt.Sprintf("test:rate:%d", time.Now().UnixNano())
	per := Rate{N: 3, Per: time.Hour}
	allowed := 0
	for i := 0; i < 6; i++ {
		lim := a
		if i%2 == 1 {
			lim = b
		}
		r, err := lim.AllowRate(context.Background(), key, per)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		} else if r.RetryAfter < 19*time.Minute {
			t.Fatalf("refused with retry after %v, want about 20m", r.RetryAfter)
		}
	}
	if allowed != 3 {
		t.Fatalf("%d of 6 allowed, want 3", allowed)
	}
}

func TestRedisSharesOneBudget(t *testing.T) {
	url := redisURL(t)
	a, ca, err := NewRedis(url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ca.Close() }() // only frees its connection pool
	b, cb, _ := NewRedis(url)
	defer func() { _ = cb.Close() }()
	key := fmt.Sprintf("test:%d", time.Now().UnixNano())
	allowed := 0
	for i := 0; i < 10; i++ {
		lim := a
		if i%2 == 1 {
			lim = b // two replicas, one budget
		}
		r, err := lim.Allow(context.Background(), key, 5)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		} else if r.RetryAfter <= 0 {
			t.Fatalf("rejected without Retry-After: %+v", r)
		}
	}
	if allowed != 5 {
		t.Fatalf("%d of 10 allowed across two limiters, want 5", allowed)
	}
}

type failing struct{}

func (failing) Allow(context.Context, string, int) (Result, error) {
	return Result{}, errors.New("redis down")
}

func (failing) AllowRate(context.Context, string, Rate) (Result, error) {
	return Result{}, errors.New("redis down")
}

func TestFallbackWhenRedisUnreachable(t *testing.T) {
	// A real client against a closed port, so the failure path is the real one.
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	down, c, err := NewRedis("redis://" + addr + "/0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }() // only frees its connection pool
	var failures int
	f := &Fallback{Primary: down, Secondary: NewMemory(), OnFallback: func(error) { failures++ }}
	allowed := 0
	start := time.Now()
	for i := 0; i < 4; i++ {
		r, err := f.Allow(context.Background(), "k", 2)
		if err != nil {
			t.Fatal(err)
		}
		if r.Allowed {
			allowed++
		}
	}
	if allowed != 2 || failures != 1 {
		t.Fatalf("allowed %d (want 2, the in-memory budget), fallbacks %d (want 1: then the cooldown)", allowed, failures)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("an unreachable Redis held requests for %v", time.Since(start))
	}
	var _ Limiter = failing{}
}

type toggle struct{ down bool }

func (t *toggle) Allow(context.Context, string, int) (Result, error) {
	if t.down {
		return Result{}, errors.New("redis down")
	}
	return Result{Allowed: true, Limit: 99, Remaining: 98}, nil
}

func (t *toggle) AllowRate(ctx context.Context, key string, _ Rate) (Result, error) {
	return t.Allow(ctx, key, 0)
}

func TestFallbackRecoversAfterCooldown(t *testing.T) {
	p := &toggle{down: true}
	f := &Fallback{Primary: p, Secondary: NewMemory(), Cooldown: 50 * time.Millisecond}
	if r, _ := f.Allow(context.Background(), "k", 5); r.Limit != 5 {
		t.Fatalf("while down the in-memory limiter answers: %+v", r)
	}
	p.down = false
	if r, _ := f.Allow(context.Background(), "k", 5); r.Limit != 5 {
		t.Fatalf("during the cooldown Redis is not asked: %+v", r)
	}
	time.Sleep(60 * time.Millisecond)
	if r, _ := f.Allow(context.Background(), "k", 5); r.Limit != 99 {
		t.Fatalf("after the cooldown Redis answers again: %+v", r)
	}
}

func TestBlocklist(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := &Blocklist{Max: 3, now: func() time.Time { return now }}
	if _, ok := b.Blocked("a"); ok {
		t.Fatal("empty list blocks")
	}
	b.Block("a", now.Add(time.Second))
	b.Block("a", now.Add(time.Millisecond)) // an earlier end does not shorten it
	if d, ok := b.Blocked("a"); !ok || d != time.Second {
		t.Fatalf("blocked %v %v", d, ok)
	}
	b.Block("past", now) // already over: not kept
	b.Block("b", now.Add(100*time.Millisecond))
	b.Block("c", now.Add(2*time.Second))
	b.Block("d", now.Add(time.Second)) // full, nothing expired: dropped
	if _, ok := b.Blocked("d"); ok || b.Len() != 3 {
		t.Fatalf("the list grew past its bound: %d", b.Len())
	}
	now = now.Add(sweepEvery + time.Millisecond) // "b" has expired
	b.Block("d", now.Add(time.Second))           // full: the sweep makes room
	if _, ok := b.Blocked("d"); !ok || b.Len() != 3 {
		t.Fatalf("expired entries not swept: %d", b.Len())
	}
	now = now.Add(time.Second)
	if _, ok := b.Blocked("a"); ok {
		t.Fatal("an expired entry still blocks")
	}
	if b.Len() != 2 {
		t.Fatalf("an expired entry is kept after a lookup: %d", b.Len())
	}
}

// A switch between Redis and the in-memory budget carries what was spent:
// neither direction starts a fresh budget.
func TestFallbackCarriesBudgetAcrossSwitches(t *testing.T) {
	p := &toggle{}
	f := &Fallback{Primary: p, Secondary: NewMemory(), Cooldown: 20 * time.Millisecond}
	spend := func(n int) (allowed int) {
		for range n {
			if r, _ := f.Allow(context.Background(), "k", 5); r.Allowed {
				allowed++
			}
		}
		return allowed
	}
	if got := spend(5); got != 5 {
		t.Fatalf("Redis up: %d of 5 allowed", got)
	}
	p.down = true
	if got := spend(5); got != 0 {
		t.Errorf("Redis just dropped: %d more allowed, want 0 (the shared budget was spent)", got)
	}
	time.Sleep(time.Second + 30*time.Millisecond) // a fresh second
	if got := spend(5); got != 5 {
		t.Fatalf("Redis down, a second later: %d of 5 allowed locally", got)
	}
	p.down = false // Redis back (its toggle allows everything), past the cooldown
	time.Sleep(30 * time.Millisecond)
	if got := spend(5); got != 0 {
		t.Errorf("Redis just came back: %d allowed, want 0 (the local budget was spent)", got)
	}
}

// TestMemoryJoinedIsTheSameBudget: AllowRateJoined(a, b, c) spends the
// budget AllowRate names a+b+c (one bucket, whichever asks), long names
// (past its stack buffer) included, and a spend from an existing bucket
// allocates nothing.
func TestMemoryJoinedIsTheSameBudget(t *testing.T) {
	m := NewMemory()
	now := time.Unix(1_700_000_000, 0)
	m.now = func() time.Time { return now }
	long := string(make([]byte, 300))
	for _, id := range []string{"key_1", long} {
		r := PerSecond(4)
		for i := range 4 {
			var res Result
			if i%2 == 0 {
				res = m.AllowRateJoined("live", ":account:", id, r)
			} else {
				res, _ = m.AllowRate(context.Background(), "live:account:"+id, r)
			}
			if !res.Allowed || res.Remaining != 3-i {
				t.Fatalf("spend %d of %q: %+v", i, id[:5], res)
			}
		}
		if res := m.AllowRateJoined("live", ":account:", id, r); res.Allowed {
			t.Fatalf("a fifth spend of 4 allowed: %+v", res)
		}
	}
	if len(m.buckets) != 2 {
		t.Fatalf("%d buckets, want one a name", len(m.buckets))
	}
	if n := testing.AllocsPerRun(100, func() { m.AllowRateJoined("live", ":", "key_1", PerSecond(1000)) }); n != 0 {
		t.Fatalf("a spend from an existing bucket allocates %v times", n)
	}
}
