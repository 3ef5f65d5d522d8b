package ratelimit

import (
	"context"
	"sync/atomic"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"
)

// Redis shares each budget (credential, account, client address) across every replica (GCRA in a
// Lua script, one round trip per request).
type Redis struct {
	lim *redis_rate.Limiter
}

// NewRedis connects to url (redis://host:port/db). Timeouts are short: a slow
// Redis must not hold requests up (see Fallback).
func NewRedis(url string) (*Redis, *redis.Client, error) {
	redis.SetLogger(quiet{}) // failures are reported through Fallback, not printed
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, nil, err
	}
	opt.DialTimeout = 250 * time.Millisecond
	opt.ReadTimeout = 250 * time.Millisecond
	opt.WriteTimeout = 250 * time.Millisecond
	opt.MaxRetries = 0
	opt.DialerRetries = 1
	rdb := redis.NewClient(opt)
	return &Redis{lim: redis_rate.NewLimiter(rdb)}, rdb, nil
}

func (r *Redis) Allow(ctx context.Context, key string, perSecond int) (Result, error) {
	return r.AllowRate(ctx, key, PerSecond(perSecond))
}

// AllowRate is Allow for r.N requests per r.Per (GCRA: a burst of r.N).
func (r *Redis) AllowRate(ctx context.Context, key string, rt Rate) (Result, error) {
	res, err := r.lim.Allow(ctx, "hsrcpay:ratelimit:"+key, redis_rate.Limit{Rate: rt.N, Burst: rt.N, Period: rt.Per})
	if err != nil {
		return Result{}, err
	}
	out := Result{Allowed: res.Allowed > 0, Limit: rt.N, Remaining: res.Remaining, ResetAfter: res.ResetAfter}
	if !out.Allowed {
		out.RetryAfter = res.RetryAfter
	}
	return out, nil
}

// Fallback uses Primary (Redis) and, when it fails, Secondary (in memory),
// so an unreachable Redis degrades shared limits to per-replica ones instead
// of failing or un-limiting requests. After a failure Primary is left alone
// for Cooldown (default 1s), so a dead Redis costs no latency per request.
// OnFallback observes each failure.
//
// A switch between the two must not hand out a fresh budget (up to twice the
// limit in the second of the switch). So Secondary is kept warm: every
// request Primary allows is spent in Secondary too, and while Primary answers
// a request passes only if both allow it. Normally Secondary never refuses
// first (it has spent only this replica's share of what Primary allowed);
// it does after an outage, when it carries what was spent locally while
// Primary was down and Primary's state has aged (or Redis restarted empty).
// In the other direction, when Primary drops, Secondary already holds what
// this replica spent from the shared budget. A request refused by Primary
// spends nothing locally; one Primary allowed and Secondary refused has
// spent a token in Redis (conservative: Redis does not refund).
type Fallback struct {
	Primary, Secondary Limiter
	OnFallback         func(error)
	Cooldown           time.Duration
	downUntil          atomic.Int64 // unix nanoseconds
}

func (f *Fallback) Allow(ctx context.Context, key string, perSecond int) (Result, error) {
	return f.AllowRate(ctx, key, PerSecond(perSecond))
}

// AllowRate is Allow for any rate, with the same fallback and warm
// secondary: a key's own limit degrades exactly as the default budgets.
func (f *Fallback) AllowRate(ctx context.Context, key string, rt Rate) (Result, error) {
	if time.Now().UnixNano() >= f.downUntil.Load() {
		res, err := f.Primary.AllowRate(ctx, key, rt)
		if err == nil {
			if !res.Allowed {
				return res, nil
			}
			// An in-memory limiter does not fail; if one did, Redis decides alone.
			if local, lerr := f.Secondary.AllowRate(ctx, key, rt); lerr == nil {
				if !local.Allowed {
					return local, nil // the budget spent here while Redis was away
				}
				res.Remaining = min(res.Remaining, local.Remaining)
				res.ResetAfter = max(res.ResetAfter, local.ResetAfter)
			}
			return res, nil
		}
		cool := f.Cooldown
		if cool == 0 {
			cool = time.Second
		}
		f.downUntil.Store(time.Now().Add(cool).UnixNano())
		if f.OnFallback != nil {
			f.OnFallback(err)
		}
	}
	return f.Secondary.AllowRate(ctx, key, rt)
}

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
