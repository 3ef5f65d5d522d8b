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
	// AllowRate is Allow for a budget of any rate: r.N requests per r.Per
	// (a key's own rate limit, issue 22). Allow(perSecond) is AllowRate
	// with Rate{perSecond, time.Second}.
	AllowRate(ctx context.Context, key string, r Rate) (Result, error)
}

// Rate is a budget: a token bucket holding N, refilled evenly over Per.
type Rate struct {
	N   int
	Per time.Duration
}

// PerSecond is the budget of n requests per second (burst n).
func PerSecond(n int) Rate { return Rate{N: n, Per: time.Second} }

func (r Rate) limit() rate.Limit { return rate.Limit(float64(r.N) / r.Per.Seconds()) }

// Memory is a token bucket per key (burst = one window's budget), forgetting
// keys idle for a minute, or their window when longer (a bucket is full
// again by then), so the map stays bounded by active credentials.
type Memory struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
	lastGC  time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
	per  time.Duration // its rate's window: idle that long, it is full again
	// n and limit are lim's burst and limit, as it was made (nothing changes them).
	n     int
	limit rate.Limit
}

func NewMemory() *Memory {
	return &Memory{buckets: map[string]*bucket{}, now: time.Now}
}

const idleTTL = time.Minute

func (m *Memory) Allow(ctx context.Context, key string, perSecond int) (Result, error) {
	return m.AllowRate(ctx, key, PerSecond(perSecond))
}

// AllowRate spends one request of key's bucket of rate r. A bucket whose
// rate changed (a key's limit updated) starts again full.
func (m *Memory) AllowRate(_ context.Context, key string, r Rate) (Result, error) {
	return m.allow(key, nil, r), nil
}

// AllowRateJoined is AllowRate for the key a+b+c, without making that
// string unless the key gets a new bucket: the server names a credential's
// budgets by joining a mode, a separator and an id, which was an
// allocation per budget spent (four a verify). It never fails.
func (m *Memory) AllowRateJoined(a, b, c string, r Rate) Result {
	var buf [128]byte
	k := append(append(append(buf[:0], a...), b...), c...)
	return m.allow("", k, r)
}

// allow spends from the bucket of key, or of joined when it is not nil.
func (m *Memory) allow(key string, joined []byte, r Rate) Result {
	now := m.now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if now.Sub(m.lastGC) > idleTTL {
		for k, b := range m.buckets {
			// Forgotten only once full again: a key limited per day keeps
			// its bucket for the day, so idling does not refill it early.
			if now.Sub(b.seen) > max(idleTTL, b.per) {
				delete(m.buckets, k)
			}
		}
		m.lastGC = now
	}
	var b *bucket
	if joined != nil {
		b = m.buckets[string(joined)] // a lookup: the conversion makes no string
	} else {
		b = m.buckets[key]
	}
	// The bucket's own rate, not its limiter's Burst and Limit: each of
	// those takes the limiter's lock, twice a spend and four spends a verify.
	if b == nil || b.n != r.N || b.limit != r.limit() {
		b = &bucket{lim: rate.NewLimiter(r.limit(), r.N), per: r.Per, n: r.N, limit: r.limit()}
		if joined != nil {
			key = string(joined)
		}
		m.buckets[key] = b
	}
	b.seen = now
	res := Result{Limit: r.N}
	if b.lim.AllowN(now, 1) {
		res.Allowed = true
	} else {
		r := b.lim.ReserveN(now, 1)
		res.RetryAfter = r.DelayFrom(now)
		r.CancelAt(now)
	}
	tokens := b.lim.TokensAt(now)
	res.Remaining = max(0, int(math.Floor(tokens)))
	res.ResetAfter = time.Duration((float64(r.N) - tokens) / float64(r.limit()) * float64(time.Second))
	return res
}
