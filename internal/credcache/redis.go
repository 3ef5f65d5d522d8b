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

// Channel is the Redis Pub/Sub channel the replicas of the default
// deployment announce key changes on (DefaultDeployment; see ChannelFor).
// A message is "<mode>:<key id>" (e.g. "test:key_abc"): neither a secret
// nor a hash ever travels.
const Channel = "hsrcpay:credcache:invalidate"

// DefaultDeployment is the deployment name of a server that was given none
// (HSRCPAY_DEPLOYMENT unset).
const DefaultDeployment = "default"

// ChannelFor is the channel of a deployment's replicas: replicas that share
// a store share a deployment name, and only they hear each other's key
// changes, so two deployments on one Redis (staging and production, two
// regions with stores of their own) never drop each other's entries.
// Another deployment's announcement would never make a cache accept what
// it should refuse (it only drops an entry), but it costs store reads, and
// names nothing its replicas hold.
//
// The default deployment keeps the channel every replica used before
// deployments had names (Channel): a rolling upgrade mixes old and new
// replicas of one deployment for a while, and on two channels neither
// would hear the other's revocations until their entries expired (the
// TTL). Renaming a running deployment has that cost for as long as the
// rollout mixes the names: restart it whole, or accept it.
func ChannelFor(deployment string) string {
	if deployment == "" || deployment == DefaultDeployment {
		return Channel
	}
	return "hsrcpay:" + deployment + ":credcache:invalidate"
}

// ErrQueueFull is returned by Publish when the announcements waiting to be
// sent already fill the queue (Redis is slow or away): this one is dropped.
var ErrQueueFull = errors.New("credcache: announcement queue full; dropped")

// Defaults for BusOptions.
const (
	// DefaultQueueSize bounds the announcements waiting to be sent: ~64 B
	// each, so well under a MiB, and far more than the writes a replica
	// commits in the second a failing Redis is left alone.
	DefaultQueueSize = 4096
	// maxBatch is how many announcements one round trip (a pipeline) carries.
	maxBatch = 256
)

// BusOptions tune a Bus; the zero value is the production setting.
type BusOptions struct {
	// PingInterval is how long the subscription may stay silent before it
	// is pinged; no answer within another interval ends it (default 1s).
	// It bounds how long a dead link that sends no error (a network
	// partition, a frozen Redis) goes unnoticed.
	PingInterval time.Duration
	// PublishTimeout bounds one round trip of announcements (default
	// 500ms). After a failure the publisher leaves Redis alone for
	// PublishCooldown (default 1s), then tries again with what queued up
	// meanwhile (a circuit breaker: one probe per cooldown while Redis fails).
	PublishTimeout, PublishCooldown time.Duration
	// QueueSize bounds the announcements waiting to be sent (default
	// DefaultQueueSize); beyond it Publish drops them (ErrQueueFull).
	QueueSize int
	// Log receives subscription state changes and announcements given up
	// (default: discarded).
	Log *slog.Logger
	// OnRemote observes each invalidation received (metrics).
	OnRemote func()
	// OnSubscribed observes the subscription going up (true) or down (false).
	OnSubscribed func(bool)
	// OnDropped observes announcements given up: n of them, because the
	// queue was full or Redis failed to take them (metrics).
	OnDropped func(n int)
	// Deployment names the replicas that hear each other (ChannelFor);
	// "" is DefaultDeployment.
	Deployment string
}

// Bus carries invalidations between replicas over Redis Pub/Sub: Publish
// announces a change; Run subscribes and applies the changes every replica
// announces to the local cache, and sends this replica's announcements.
//
// Pub/Sub delivers at most once and only to subscribers connected at the
// time: a replica whose subscription drops misses what was published
// meanwhile. So the cache is bypassed (Suspend) from the moment the
// subscription is known to be down, and flushed when it is back (Resume)
// before it serves again. What stays unbounded by the subscription — an
// announcement this replica could not send (Redis killed, frozen or
// flapping while other replicas' subscriptions stay up), or the seconds
// before a silent link is noticed — is bounded by the cache's TTL.
type Bus struct {
	rdb        redis.UniversalClient
	cache      *Cache // nil: publish only (this replica caches nothing)
	o          BusOptions
	channel    string       // ChannelFor(o.Deployment)
	queue      chan string  // "<mode>:<key id>", waiting to be sent
	pending    atomic.Int64 // queued or being sent: Flush waits for 0
	subscribed atomic.Bool

	fullDrops   atomic.Int64 // dropped for a full queue since the last log line
	fullLogged  atomic.Int64 // unix nanoseconds of that line
	sent        atomic.Int64 // announcements Redis took
	droppedEver atomic.Int64 // announcements given up
}

// NewBus builds a bus on rdb for cache (nil: publish only). A cache that
// relies on it should be built Suspended: it serves from the first
// subscription on. Nothing is sent before Run.
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
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Bus{rdb: rdb, cache: cache, o: o, channel: ChannelFor(o.Deployment), queue: make(chan string, o.QueueSize)}
}

// Publish queues the announcement that a key changed, for every replica to
// drop it, and returns at once: it runs after the change committed, and a
// write's response never waits for Redis (a dead Redis used to cost each
// write its timeout, for nothing: the other replicas' bound is the TTL then
// anyway). Run sends it, normally within a round trip to Redis. When the
// queue is full it is dropped, counted and logged (ErrQueueFull): the other
// replicas drop the key when their entries expire, within the TTL. It is
// context-free on purpose: a change that committed is announced even if
// its client has gone away.
func (b *Bus) Publish(mode apikey.Mode, keyID string) error {
	msg := string(mode) + ":" + keyID
	b.pending.Add(1)
	select {
	case b.queue <- msg:
		return nil
	default:
	}
	b.pending.Add(-1)
	b.dropped(1)
	n := b.fullDrops.Add(1)
	// One line a second at most: a full queue means many writes per second.
	now := time.Now().UnixNano()
	if last := b.fullLogged.Load(); now-last >= int64(time.Second) && b.fullLogged.CompareAndSwap(last, now) {
		b.fullDrops.Add(-n)
		b.o.Log.Warn("credential cache: announcement queue full; key changes not announced through Redis (other replicas refuse their old state when their cache entries expire, HSRCPAY_CREDENTIAL_CACHE_TTL)",
			"mode", string(mode), "key_id", keyID, "dropped", n, "queue", b.o.QueueSize)
	}
	return ErrQueueFull
}

func (b *Bus) dropped(n int) {
	b.droppedEver.Add(int64(n))
	if b.o.OnDropped != nil {
		b.o.OnDropped(n)
	}
}

// Dropped returns how many announcements were given up so far (a full
// queue, or Redis failing to take them).
func (b *Bus) Dropped() int64 { return b.droppedEver.Load() }

// Sent returns how many announcements Redis took so far.
func (b *Bus) Sent() int64 { return b.sent.Load() }

// Flush waits until every announcement queued so far has been sent or
// given up, or ctx ends (its error). A command that changes keys and exits
// calls it, bounded, so that its announcements leave before it does.
func (b *Bus) Flush(ctx context.Context) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for b.pending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// publish sends the queued announcements until ctx ends, a batch per round
// trip. After a failure it leaves Redis alone for the cooldown: writes go
// on queueing meanwhile (never waiting), and the next batch is the probe.
// A batch that fails is given up, not retried: a frozen Redis may have
// delivered it, and retrying could hold the queue for one timeout each.
func (b *Bus) publish(ctx context.Context) {
	var downUntil time.Time
	batch := make([]string, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return
		case msg := <-b.queue:
			batch = append(batch[:0], msg)
		}
		if wait := time.Until(downUntil); wait > 0 {
			select {
			case <-ctx.Done():
				b.pending.Add(-1) // never sent: Flush's callers see ctx end first
				return
			case <-time.After(wait):
			}
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case msg := <-b.queue:
				batch = append(batch, msg)
			default:
				break fill
			}
		}
		if err := b.send(ctx, batch); err != nil {
			downUntil = time.Now().Add(b.o.PublishCooldown)
			b.dropped(len(batch))
			b.o.Log.Warn("credential cache: key changes not announced through Redis; other replicas refuse their old state when their cache entries expire (HSRCPAY_CREDENTIAL_CACHE_TTL); publishing paused",
				"keys", strings.Join(batch, ","), "err", err, "pause", b.o.PublishCooldown.String())
		} else {
			b.sent.Add(int64(len(batch)))
		}
		b.pending.Add(-int64(len(batch)))
	}
}

// send publishes a batch in one round trip, bounded by PublishTimeout; a
// batch under way finishes even if ctx ends meanwhile.
func (b *Bus) send(ctx context.Context, batch []string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.o.PublishTimeout)
	defer cancel()
	_, err := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, msg := range batch {
			p.Publish(ctx, b.channel, msg)
		}
		return nil
	})
	return err
}

// Channel is the Redis channel this bus publishes and subscribes on.
func (b *Bus) Channel() string { return b.channel }

// Subscribed reports whether the subscription is up (the cache serving).
func (b *Bus) Subscribed() bool { return b.subscribed.Load() }

// Run sends this replica's announcements and, with a cache, keeps the
// subscription up until ctx ends, reconnecting with backoff; it leaves the
// cache suspended when it returns. Announcements still queued then are
// not sent (Flush first to wait for them).
func (b *Bus) Run(ctx context.Context) {
	done := make(chan struct{})
	go func() { defer close(done); b.publish(ctx) }()
	defer func() { <-done }()
	if b.cache == nil {
		<-ctx.Done()
		return
	}
	b.subscribe(ctx)
}

func (b *Bus) subscribe(ctx context.Context) {
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
	ps := b.rdb.Subscribe(ctx, b.channel)
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
