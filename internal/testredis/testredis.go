// Package testredis is the one place tests find their Redis: the URL comes
// from HSRCPAY_TEST_REDIS_URL (default redis://127.0.0.1:6379/0), so the
// suite can be pointed at a Redis, or a database number, that holds nothing
// else; and a Redis that does not answer skips the test, or fails it when
// HSRCPAY_REQUIRE_REDIS=1 (CI).
package testredis

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Environment variables of the Redis tests.
const (
	// EnvURL names the Redis (and database) the tests use. Tests publish on
	// the credential-cache channel and write short-lived rate-limit keys
	// under their own prefixes; they never flush.
	EnvURL = "HSRCPAY_TEST_REDIS_URL"
	// EnvRequire=1 turns "Redis not reachable" from a skip into a failure.
	EnvRequire = "HSRCPAY_REQUIRE_REDIS"
)

// DefaultURL is used when EnvURL is unset.
const DefaultURL = "redis://127.0.0.1:6379/0"

var probe struct {
	sync.Mutex
	done bool
	url  string
	err  error
}

// configured is the URL from the environment or the default, not probed.
func configured() string {
	if u := os.Getenv(EnvURL); u != "" {
		return u
	}
	return DefaultURL
}

// Up reports whether the configured Redis answers a PING, without skipping
// or failing. The probe runs once per test binary.
func Up() bool {
	_, err := find()
	return err == nil
}

func find() (string, error) {
	probe.Lock()
	defer probe.Unlock()
	if !probe.done {
		probe.url = configured()
		probe.err = ping(probe.url)
		probe.done = true
	}
	return probe.url, probe.err
}

func ping(u string) error {
	opts, err := redis.ParseURL(u)
	if err != nil {
		return fmt.Errorf("%s: %w", EnvURL, err)
	}
	opts.DialTimeout, opts.MaxRetries = time.Second, -1
	c := redis.NewClient(opts)
	defer func() { _ = c.Close() }() // a probe: Ping's answer is the result
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

// URL returns the URL of the test Redis. When it does not answer, it skips
// the test with a message naming the URL, or fails it when
// HSRCPAY_REQUIRE_REDIS=1.
func URL(t testing.TB) string {
	t.Helper()
	u, err := find()
	if err == nil {
		return u
	}
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf("Redis not reachable at %s (%v) and %s=1: failing (set %s)", redact(u), err, EnvRequire, EnvURL)
	}
	t.Skipf("Redis not reachable at %s (%v): skipping (set %s, or %s=1 to fail instead)", redact(u), err, EnvURL, EnvRequire)
	return ""
}

// Addr returns the host:port of the test Redis (for a proxy in front of it),
// skipping or failing as URL does.
func Addr(t testing.TB) string {
	t.Helper()
	return Options(t).Addr
}

// Options returns client options for the test Redis (address, database,
// credentials), skipping or failing as URL does.
func Options(t testing.TB) *redis.Options {
	t.Helper()
	opts, err := redis.ParseURL(URL(t))
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	return opts
}

// Via returns the test Redis's URL with its host:port replaced by addr (a
// proxy that forwards to Addr), keeping the database and credentials. It
// skips or fails as URL does.
func Via(t testing.TB, addr string) string {
	t.Helper()
	u, err := url.Parse(URL(t))
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	u.Host = addr
	return u.String()
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return "(unparsable URL)"
}
