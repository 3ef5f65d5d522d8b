package credcache

import (
	"context"
	"errors"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

// needRedis skips the test without the test Redis (fails it in CI).
func needRedis(t *testing.T) {
	t.Helper()
	testredis.URL(t)
}

// redisOptions are the test Redis's options (database, credentials) with the
// address replaced by addr, e.g. a proxy's.
func redisOptions(t *testing.T, addr string) *redis.Options {
	t.Helper()
	o := testredis.Options(t)
	if addr != "" {
		o.Addr = addr
	}
	return o
}

// proxy stands between the bus and Redis, to cut, refuse or freeze the
// link the way a network does.
type proxy struct {
	ln      net.Listener
	target  string      // the test Redis's host:port
	refuse  atomic.Bool // close new connections at once
	frozen  atomic.Bool // forward nothing (a partition: no error, no data)
	mu      sync.Mutex
	conns   []net.Conn
	stopped chan struct{}
}

func newProxy(t *testing.T) *proxy {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: testredis.Addr(t), stopped: make(chan struct{})}
	go p.accept()
	t.Cleanup(func() { _ = ln.Close(); <-p.stopped; p.cut() })
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer close(p.stopped)
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.refuse.Load() {
			_ = c.Close() // refused: the client sees the connection end
			continue
		}
		up, err := (&net.Dialer{Timeout: time.Second}).DialContext(context.Background(), "tcp", p.target)
		if err != nil {
			_ = c.Close() // no upstream: refuse
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, up)
		p.mu.Unlock()
		go p.pipe(c, up)
		go p.pipe(up, c)
	}
}

func (p *proxy) pipe(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		for p.frozen.Load() {
			time.Sleep(5 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			_ = dst.Close() // pass the end on
			return
		}
	}
}

// cut closes every connection, as a Redis restart does.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close() // ending it is the point
	}
	p.conns = nil
}

func eventually(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// startBus runs a bus for c through p; it returns a direct Redis client
// that plays the other replicas.
func startBus(t *testing.T, c *Cache, p *proxy, o BusOptions) (*Bus, *redis.Client) {
	t.Helper()
	ro := redisOptions(t, p.addr())
	ro.DialTimeout, ro.ReadTimeout, ro.WriteTimeout, ro.MaxRetries = 250*time.Millisecond, 250*time.Millisecond, 250*time.Millisecond, -1
	viaProxy := redis.NewClient(ro)
	direct := redis.NewClient(redisOptions(t, ""))
	t.Cleanup(func() { _ = viaProxy.Close(); _ = direct.Close() }) // only frees connections
	b := NewBus(viaProxy, c, o)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return b, direct
}

func TestBusAppliesAnnouncements(t *testing.T) {
	needRedis(t)
	c := New(Options{TTL: time.Minute, Suspended: true})
	var remote atomic.Int64
	b, direct := startBus(t, c, newProxy(t), BusOptions{OnRemote: func() { remote.Add(1) }})
	eventually(t, "subscribed", 5*time.Second, b.Subscribed)
	if !c.Active() {
		t.Fatal("subscribed, but the cache does not serve")
	}
	c.Put(c.Begin(), apikey.Sandbox, hashOf("x"), key("key_busx", "x"))
	c.Put(c.Begin(), apikey.Sandbox, hashOf("y"), key("key_busy", "y"))
	if err := b.Publish(apikey.Sandbox, "key_busx"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "announced key dropped", time.Second, func() bool { _, hit := c.Get(apikey.Sandbox, hashOf("x")); return !hit })
	mustHit(t, c, apikey.Sandbox, "y", "key_busy")

	// Another replica's announcement, and one nobody can read: the latter
	// drops everything rather than guess.
	if err := direct.Publish(context.Background(), Channel, "live:key_busy").Err(); err != nil {
		t.Fatal(err)
	}
	if err := direct.Publish(context.Background(), Channel, "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "unreadable announcement flushes", time.Second, func() bool { _, hit := c.Get(apikey.Sandbox, hashOf("y")); return !hit })
	if remote.Load() < 3 {
		t.Fatalf("%d announcements observed, want at least 3", remote.Load())
	}
}

// While the subscription is down the cache is bypassed; when it is back it
// starts empty, since announcements made meanwhile were lost.
func TestBusFlushesOnResubscribe(t *testing.T) {
	needRedis(t)
	c := New(Options{TTL: time.Minute, Suspended: true})
	p := newProxy(t)
	b, direct := startBus(t, c, p, BusOptions{})
	eventually(t, "subscribed", 5*time.Second, b.Subscribed)
	c.Put(c.Begin(), apikey.Live, hashOf("k"), key("key_busk", "k"))
	mustHit(t, c, apikey.Live, "k", "key_busk")

	p.refuse.Store(true)
	p.cut()
	eventually(t, "down noticed", 2*time.Second, func() bool { return !b.Subscribed() && !c.Active() })
	// Lost: nobody listens through the proxy.
	if err := direct.Publish(context.Background(), Channel, "live:key_busk").Err(); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, apikey.Live, "k") // bypassed meanwhile
	p.refuse.Store(false)
	eventually(t, "resubscribed", 5*time.Second, b.Subscribed)
	mustMiss(t, c, apikey.Live, "k") // flushed: the lost announcement cannot matter
}

// A link that fails silently (no error, no data) is noticed by the ping.
func TestBusNoticesASilentLink(t *testing.T) {
	needRedis(t)
	c := New(Options{TTL: time.Minute, Suspended: true})
	p := newProxy(t)
	b, _ := startBus(t, c, p, BusOptions{PingInterval: 100 * time.Millisecond})
	eventually(t, "subscribed", 5*time.Second, b.Subscribed)
	start := time.Now()
	p.frozen.Store(true)
	eventually(t, "silent link noticed", 2*time.Second, func() bool { return !c.Active() })
	t.Logf("noticed after %v (ping interval 100ms)", time.Since(start).Round(time.Millisecond))
	p.frozen.Store(false)
	p.cut()
	eventually(t, "resubscribed", 5*time.Second, b.Subscribed)
}

// Publish never waits for Redis, whether it refuses or is frozen: what it
// cannot send is given up (counted), publishing pauses after a failure and
// probes again, and announcements flow again once Redis is back.
func TestPublishNeverWaitsForRedis(t *testing.T) {
	needRedis(t)
	p := newProxy(t)
	// A long client timeout: a Publish that waited for a frozen Redis would
	// take seconds.
	const timeout = 5 * time.Second
	o := redisOptions(t, p.addr())
	o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.MaxRetries = timeout, timeout, timeout, -1
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() }) // only frees connections
	var dropped atomic.Int64
	b := NewBus(rdb, nil, BusOptions{PublishTimeout: timeout, PublishCooldown: 200 * time.Millisecond, OnDropped: func(n int) { dropped.Add(int64(n)) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }() // no cache: only the publisher
	t.Cleanup(func() { cancel(); <-done })
	direct := redis.NewClient(testredis.Options(t))
	t.Cleanup(func() { _ = direct.Close() }) // only frees connections
	sub := direct.Subscribe(context.Background(), Channel)
	t.Cleanup(func() { _ = sub.Close() }) // ends the test's subscription
	if _, err := sub.Receive(context.Background()); err != nil {
		t.Fatal(err)
	}
	received := func(payload string) {
		t.Helper()
		for {
			msg, err := sub.ReceiveTimeout(context.Background(), 5*time.Second)
			if err != nil {
				t.Fatalf("%s never announced: %v", payload, err)
			}
			if m, ok := msg.(*redis.Message); ok && m.Payload == payload {
				return
			}
		}
	}
	publish := func(id string) {
		t.Helper()
		start := time.Now()
		if err := b.Publish(apikey.Live, id); err != nil {
			t.Fatalf("publish %s: %v", id, err)
		}
		if d := time.Since(start); d > 100*time.Millisecond {
			t.Fatalf("Publish took %v: it waited for Redis", d)
		}
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer fcancel()

	publish("key_up")
	if err := b.Flush(fctx); err != nil {
		t.Fatal(err)
	}
	received("live:key_up")

	// Frozen: the first round trip waits out its 5 s in the background.
	p.frozen.Store(true)
	for i := range 3 {
		publish("key_frozen" + strconv.Itoa(i))
	}
	// Refused: the frozen connection is cut, new ones are refused.
	p.refuse.Store(true)
	p.cut()
	p.frozen.Store(false)
	for i := range 3 {
		publish("key_refused" + strconv.Itoa(i))
	}
	eventually(t, "the 6 announcements Redis never took given up", 5*time.Second, func() bool { return dropped.Load() == 6 })
	if b.Sent() != 1 {
		t.Fatalf("%d announcements sent, want 1", b.Sent())
	}

	// Back: the next probe goes through, and so does what follows.
	p.refuse.Store(false)
	time.Sleep(250 * time.Millisecond) // past the cooldown
	publish("key_back")
	received("live:key_back")
	if dropped.Load() != 6 {
		t.Fatalf("%d announcements given up, want 6", dropped.Load())
	}
}

// The queue is bounded: while the publisher waits on a frozen Redis, the
// announcements beyond QueueSize are dropped at once (ErrQueueFull), and a
// bounded Flush returns when its context ends.
func TestPublishQueueIsBoundedWhileRedisIsFrozen(t *testing.T) {
	needRedis(t)
	p := newProxy(t)
	rdb := redis.NewClient(&redis.Options{Addr: p.addr(), DialTimeout: time.Second, ReadTimeout: 10 * time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() }) // only frees connections
	var dropped atomic.Int64
	b := NewBus(rdb, nil, BusOptions{PublishTimeout: 10 * time.Second, QueueSize: 2, OnDropped: func(n int) { dropped.Add(int64(n)) }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	t.Cleanup(func() { p.cut(); cancel(); <-done })
	if err := b.Publish(apikey.Live, "key_warm"); err != nil { // opens the connection
		t.Fatal(err)
	}
	fctx, fcancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer fcancel()
	if err := b.Flush(fctx); err != nil || b.Sent() != 1 {
		t.Fatalf("flush: %v, %d sent", err, b.Sent())
	}

	p.frozen.Store(true)
	if err := b.Publish(apikey.Live, "key_0"); err != nil { // taken by the publisher, which then waits
		t.Fatal(err)
	}
	eventually(t, "the publisher took the first", time.Second, func() bool { return len(b.queue) == 0 })
	var full int
	for i := range 5 {
		err := b.Publish(apikey.Live, "key_"+strconv.Itoa(i+1))
		switch {
		case errors.Is(err, ErrQueueFull):
			full++
		case err != nil:
			t.Fatal(err)
		}
	}
	if full != 3 || dropped.Load() != 3 {
		t.Fatalf("%d refused as full and %d counted dropped, want 3 and 3 (queue of 2)", full, dropped.Load())
	}
	short, scancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer scancel()
	start := time.Now()
	if err := b.Flush(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("flush while frozen: %v, want its deadline", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a flush bounded at 100ms took %v", d)
	}
	p.frozen.Store(false)
}

// An idle but healthy link stays up: the pings are answered, nothing is
// flushed.
func TestBusStaysUpWhenIdle(t *testing.T) {
	needRedis(t)
	c := New(Options{TTL: time.Minute, Suspended: true})
	var ups, downs atomic.Int64
	b, _ := startBus(t, c, newProxy(t), BusOptions{PingInterval: 50 * time.Millisecond, OnSubscribed: func(up bool) {
		if up {
			ups.Add(1)
		} else {
			downs.Add(1)
		}
	}})
	eventually(t, "subscribed", 5*time.Second, b.Subscribed)
	c.Put(c.Begin(), apikey.Live, hashOf("idle"), key("key_idle", "idle"))
	time.Sleep(600 * time.Millisecond) // a dozen ping intervals of silence
	mustHit(t, c, apikey.Live, "idle", "key_idle")
	if ups.Load() != 1 || downs.Load() != 0 {
		t.Fatalf("subscription went up %d and down %d times while idle", ups.Load(), downs.Load())
	}
}
