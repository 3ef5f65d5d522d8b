package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/credcache"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
)

// announceWait bounds how long a command that changed keys waits, before it
// exits, for its announcements to reach Redis: one round trip normally
// (milliseconds); a dead or frozen Redis fails sooner than this (the
// client's 250 ms dial and read timeouts, the announcement's 500 ms bound).
const announceWait = 2 * time.Second

// announcer tells running servers' credential caches about the keys a
// command (bootstrap, rotate-managed) changed, as a server announces its own
// changes: the same channel and messages, sent after the change committed.
// Without it a running replica would keep accepting a rotated-away secret
// for its cache's TTL (issue 18, class 7). A nil announcer (no
// HSRCPAY_REDIS_URL) announces nothing: servers without Redis have no
// channel, and refuse the old state within their TTL.
type announcer struct {
	bus  *credcache.Bus
	rdb  *redis.Client
	stop context.CancelFunc
	done chan struct{}
}

func newAnnouncer(cfg config.Config) (*announcer, error) {
	if cfg.RedisURL == "" {
		return nil, nil
	}
	// The client the server builds: the same short timeouts.
	_, rdb, err := ratelimit.NewRedis(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("HSRCPAY_REDIS_URL: %w", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	a := &announcer{bus: credcache.NewBus(rdb, nil, credcache.BusOptions{Deployment: cfg.Deployment}), rdb: rdb, stop: stop, done: make(chan struct{})}
	go func() { a.bus.Run(ctx); close(a.done) }() // no cache: only its publisher
	return a, nil
}

// changed is apikeys.Options.Changed: it queues the announcement, never
// waiting (finish does, bounded).
func (a *announcer) changed(mode apikey.Mode, keyID string) {
	if a != nil {
		_ = a.bus.Publish(mode, keyID) // a drop is counted: finish reports it
	}
}

// finish waits up to announceWait for the announcements to leave, then
// stops. When some could not be made it says so on stderr: the change itself
// stands (committed, secrets printed), and running servers refuse the old
// state within their cache's TTL instead.
func (a *announcer) finish(cmd string, stderr io.Writer) {
	if a == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), announceWait)
	err := a.bus.Flush(ctx)
	cancel()
	a.stop()
	<-a.done
	_ = a.rdb.Close() // only frees its connection pool
	if err != nil || a.bus.Dropped() > 0 {
		eprintf(stderr, "hsrcpay-server %s: warning: the change could not be announced through Redis (HSRCPAY_REDIS_URL); running servers refuse the old secrets within their credential cache's lifetime (HSRCPAY_CREDENTIAL_CACHE_TTL) instead of at once\n", cmd)
	}
}
