package credcache

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// Channel is the Redis Pub/Sub channel replicas announce key changes on.
// A message is "<mode>:<key id>" (e.g. "test:key_abc"): neither a secret
// nor a hash ever travels.
const Channel = "hsrcpay:credcache:invalidate"

// ErrPublishPaused is returned by Publish while it waits out a failure.
var ErrPublishPaused = errors.New("credcache: publishing paused after a Redis failure")

// BusOptions tune a Bus; the zero value is the production setting.
type BusOptions struct {
	// PingInterval is how long the subscription may stay silent before it
	// is pinged; no answer within another interval ends it (default 1s).
	// It bounds how long a dead link that sends no error (a network
	// partition, a frozen Redis) goes unnoticed.
	PingInterval time.Duration
	// PublishTimeout bounds one PUBLISH (default 500ms); after a failure
	// publishing pauses for PublishCooldown (default 1s), so a dead Redis
	// costs writes no latency each.
	PublishTimeout, PublishCooldown time.Duration
	// Log receives subscription state changes (default: discarded).
	Log *slog.Logger
	// OnRemote observes each invalidation received (metrics).
	OnRemote func()
	// OnSubscribed observes the subscription going up (true) or down (false).
	OnSubscribed func(bool)
}

// Bus carries invalidations between replicas over Redis Pub/Sub: Publish
// announces a change; Run subscribes and applies the changes every replica
// announces to the local cache.
//
// Pub/Sub delivers at most once and only to subscribers connected at the
// time: a replica whose subscription drops misses what was published
// meanwhile. So the cache is bypassed (Suspend) from the moment the
// subscription is known to be down, and flushed when it is back (Resume)
// before it serves again. What stays unbounded by the subscription — a
// publisher cut off from Redis while this replica is not, or the seconds
// before a silent link is noticed — is bounded by the cache's TTL.
type Bus struct {
	rdb        redis.UniversalClient
	cache      *Cache // nil: publish only (this replica caches nothing)
	o          BusOptions
	downUntil  atomic.Int64 // unix nanoseconds: publishing paused until then
	subscribed atomic.Bool
}

// NewBus builds a bus on rdb for cache (nil: publish only). A cache that
// relies on it should be built Suspended: it serves from the first
// subscription on.
func NewBus(rdb redis.UniversalClient, cache *Cache, o BusOptions) *Bus {
	if o.PingInterval <= 0 {
		o.PingInterval = time.Second
	}
	if o.PublishTimeout <= 0 {
		o.PublishTimeout = 500 * time.Millisecond
	}
	if o.PublishCooldown <= 0 {
		o.PublishCooldown = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Bus{rdb: rdb, cache: cache, o: o}
}

// Publish announces that a key changed, for every replica to drop it. It
// runs after the change committed and holds the response until Redis took
// the message (or PublishTimeout), so that the answer the client gets is
// also the moment every connected replica is being told. It is context-free
// on purpose: a change that committed is announced even if its client has
// gone away.
func (b *Bus) Publish(mode apikey.Mode, keyID string) error {
	if time.Now().UnixNano() < b.downUntil.Load() {
		return ErrPublishPaused
	}
	ctx, cancel := context.WithTimeout(context.Background(), b.o.PublishTimeout)
	defer cancel()
	if err := b.rdb.Publish(ctx, Channel, string(mode)+":"+keyID).Err(); err != nil {
		b.downUntil.Store(time.Now().Add(b.o.PublishCooldown).UnixNano())
		return err
	}
	return nil
}

// Subscribed reports whether the subscription is up (the cache serving).
func (b *Bus) Subscribed() bool { return b.subscribed.Load() }

// Run keeps the subscription up until ctx ends, reconnecting with backoff,
// and leaves the cache suspended when it returns. Without a cache there is
// nothing to subscribe for: it returns at once.
func (b *Bus) Run(ctx context.Context) {
	if b.cache == nil {
		return
	}
	defer b.cache.Suspend()
	const minBackoff, maxBackoff = 50 * time.Millisecond, 2 * time.Second
	backoff := minBackoff
	for ctx.Err() == nil {
		up, err := b.session(ctx)
		if b.subscribed.Swap(false) && b.o.OnSubscribed != nil {
			b.o.OnSubscribed(false)
		}
		b.cache.Suspend() // before anything else: changes may be going unannounced from now on
		if ctx.Err() != nil {
			return
		}
		if up {
			backoff = minBackoff
			b.o.Log.Warn("credential cache: invalidation subscription lost; every lookup reads the store until it is back", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// session subscribes, resumes the cache once Redis confirmed the
// subscription, applies messages until the link fails, and reports whether
// it ever got that far.
func (b *Bus) session(ctx context.Context) (up bool, err error) {
	ps := b.rdb.Subscribe(ctx, Channel)
	defer func() { _ = ps.Close() }() // ends this session's connection; nothing to report
	// A blocked receive does not watch ctx: closing the PubSub ends it.
	stop := context.AfterFunc(ctx, func() { _ = ps.Close() })
	defer stop()

	msg, err := ps.ReceiveTimeout(ctx, 2*b.o.PingInterval)
	if err != nil {
		return false, err
	}
	if s, ok := msg.(*redis.Subscription); !ok || s.Kind != "subscribe" {
		return false, fmt.Errorf("credcache: unexpected first reply %T", msg)
	}
	// From here on every publish reaches us; what was published before may
	// have been missed, so start empty.
	b.cache.Resume()
	b.subscribed.Store(true)
	if b.o.OnSubscribed != nil {
		b.o.OnSubscribed(true)
	}
	b.o.Log.Info("credential cache: invalidation subscription up", "channel", Channel)
	pinged := false
	for {
		msg, err := ps.ReceiveTimeout(ctx, b.o.PingInterval)
		if err != nil {
			if ctx.Err() != nil {
				return true, ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && !pinged {
				if err := ps.Ping(ctx); err != nil {
					return true, err
				}
				pinged = true
				continue
			}
			return true, err // an error, or silence after a ping
		}
		pinged = false // any reply proves the link
		switch m := msg.(type) {
		case *redis.Message:
			b.apply(m.Payload)
		case *redis.Subscription:
			// go-redis re-subscribed on a new connection by itself:
			// messages may have been lost in between.
			if m.Kind != "subscribe" {
				return true, fmt.Errorf("credcache: %s", m.Kind)
			}
			b.cache.Flush()
		}
	}
}

// apply drops what a message names; a message it cannot read drops
// everything rather than risk keeping the key it meant.
func (b *Bus) apply(payload string) {
	if b.o.OnRemote != nil {
		b.o.OnRemote()
	}
	mode, id, ok := strings.Cut(payload, ":")
	if !ok || id == "" || (apikey.Mode(mode) != apikey.Live && apikey.Mode(mode) != apikey.Sandbox) {
		b.o.Log.Warn("credential cache: unreadable invalidation; flushing the whole cache", "channel", Channel)
		b.cache.Flush()
		return
	}
	b.cache.Invalidate(apikey.Mode(mode), id)
}
