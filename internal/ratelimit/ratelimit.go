// Package ratelimit budgets requests (per credential, per account, and failed
// authentications per client address). The in-memory limiter
// serves one replica; a shared one (Redis) can replace it behind Limiter.
package ratelimit

import (
	"context"
	"math"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Result is one decision plus what the RateLimit-* headers report.
type Result struct {
	Allowed    bool
	Limit      int
	Remaining  int
	RetryAfter time.Duration // when rejected: wait this long
	ResetAfter time.Duration // until the budget is full again
}

// Limiter decides whether the credential named by key may make one more request.
type Limiter interface {
	Allow(ctx context.Context, key string, perSecond int) (Result, error)
}

// Memory is a token bucket per key (burst = one second's budget), forgetting
// keys idle for a minute so the map stays bounded by active credentials.
type Memory struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
	lastGC  time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func NewMemory() *Memory {
	return &Memory{buckets: map[string]*bucket{}, now: time.Now}
}

const idleTTL = time.Minute

func (m *Memory) Allow(_ context.Context, key string, perSecond int) (Result, error) {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastGC) > idleTTL {
		for k, b := range m.buckets {
			if now.Sub(b.seen) > idleTTL {
				delete(m.buckets, k)
			}
		}
		m.lastGC = now
	}
	b := m.buckets[key]
	if b == nil || b.lim.Burst() != perSecond {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(perSecond), perSecond)}
		m.buckets[key] = b
	}
	b.seen = now
	res := Result{Limit: perSecond}
	if b.lim.AllowN(now, 1) {
		res.Allowed = true
	} else {
		r := b.lim.ReserveN(now, 1)
		res.RetryAfter = r.DelayFrom(now)
		r.CancelAt(now)
	}
	tokens := b.lim.TokensAt(now)
	res.Remaining = max(0, int(math.Floor(tokens)))
	res.ResetAfter = time.Duration((float64(perSecond) - tokens) / float64(perSecond) * float64(time.Second))
	return res, nil
}
