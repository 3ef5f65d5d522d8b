package credcache

import (
	"context"
	"errors"
	"net"
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

// A publisher that cannot reach Redis fails fast, then pauses.
func TestPublishFailsFastAndPauses(t *testing.T) {
	needRedis(t)
	p := newProxy(t)
	p.refuse.Store(true)
	o := redisOptions(t, p.addr())
	o.DialTimeout, o.MaxRetries = 250*time.Millisecond, -1
	rdb := redis.NewClient(o)
	t.Cleanup(func() { _ = rdb.Close() }) // only frees connections
	b := NewBus(rdb, nil, BusOptions{PublishCooldown: 200 * time.Millisecond})
	b.Run(context.Background()) // no cache: nothing to subscribe for, returns at once
	start := time.Now()
	if err := b.Publish(apikey.Live, "key_a"); err == nil || errors.Is(err, ErrPublishPaused) {
		t.Fatalf("first publish through a refusing link: %v", err)
	}
	if err := b.Publish(apikey.Live, "key_a"); !errors.Is(err, ErrPublishPaused) {
		t.Fatalf("second publish: %v, want it paused", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("failing publishes took %v", d)
	}
	p.refuse.Store(false)
	time.Sleep(250 * time.Millisecond)
	if err := b.Publish(apikey.Live, "key_a"); err != nil {
		t.Fatalf("publish after the pause: %v", err)
	}
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
