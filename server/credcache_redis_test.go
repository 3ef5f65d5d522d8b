package server_test

// A key change never waits for Redis (issue 18, class 6): its announcement
// to the other replicas is queued and sent in the background, so a killed
// or frozen Redis costs a write nothing, and the documented bound still
// holds: refused at once on the replica that made the change, within 1 s on
// the others while Redis answers, within the TTL when it does not.

import (
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

// TestRedisDownWritesDoNotWait runs two replicas on one PostgreSQL
// database: a reaches Redis through a proxy the test freezes and stops, b
// reaches it directly (its subscription stays up). Each phase deletes a key
// through a that b holds in its cache, and times the DELETE.
//
// a's Redis client and announcement bound are 5 s, so a DELETE that waited
// for a frozen Redis would take seconds (the server command's bounds, 250 ms
// and 500 ms, are the shortest any wait for Redis could take): each one
// must answer within 250 ms, far below any of them and fifty times what a
// DELETE takes here (a few ms). b must refuse the key within 1 s while Redis
// answers, within the TTL while a cannot reach it.
func TestRedisDownWritesDoNotWait(t *testing.T) {
	rurl := redisURL(t)
	url := storetest.FreshPostgresDB(t)
	const (
		redisTimeout = 5 * time.Second
		maxWrite     = 250 * time.Millisecond
		ttl          = 2 * time.Second
		// The entry expires at ttl; the poll that sees it may come a
		// little later on a busy machine.
		slack = 500 * time.Millisecond
	)
	p := newFaultProxy(t, testredis.Addr(t))
	ma := metrics.New()
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: testredis.Via(t, p.Addr), RedisTimeout: redisTimeout,
		CredentialCacheTTL: ttl, Metrics: ma})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: ttl})
	a.WaitCredentialCacheServing()
	b.WaitCredentialCacheServing()
	m := a.Bootstrap(acct)[apikey.Sandbox]
	admin := a.Client(m.Secret)
	read := client.Permissions{"account:api:key": {"read"}}

	// revoke deletes n fresh keys that b holds, through a, timing each
	// DELETE: it fails past maxWrite, or when b keeps a key past bound.
	revoke := func(phase string, n int, bound time.Duration) {
		t.Helper()
		keys := make([]*client.APIKey, n)
		for i := range keys {
			keys[i] = customKey(t, a, m, phase+" "+string(rune('a'+i)), read, nil)
			warm(t, b, keys[i].Key)
		}
		for _, k := range keys {
			start := time.Now()
			if _, err := deleteKey(t, admin, k.ID); err != nil {
				t.Fatalf("%s: DELETE: %v", phase, err)
			}
			took := time.Since(start)
			t.Logf("%s: DELETE answered in %v", phase, took.Round(100*time.Microsecond))
			if took > maxWrite {
				t.Fatalf("%s: a DELETE took %v: it waited for Redis (client timeout %v)", phase, took, redisTimeout)
			}
			refusedNow(t, a, k.Key)
			t.Logf("%s: refused by the other replica after %v (bound %v)", phase, refusedWithin(t, b, k.Key, start, bound).Round(time.Millisecond), bound)
		}
	}

	revoke("Redis up", 2, time.Second)
	if got := counter(t, ma, "hsrcpay_credential_cache_publish_errors_total", "", ""); got != 0 {
		t.Fatalf("%v announcements given up while Redis answered", got)
	}

	// Frozen: connections open, nothing answered. The first announcement
	// waits for its 5 s bound in the background; the writes do not.
	p.Freeze()
	revoke("Redis frozen", 3, ttl+slack)

	// Killed: the port refuses, open connections are reset.
	p.Stop()
	revoke("Redis killed", 3, ttl+slack)
	p.Thaw()

	// Every announcement a could not send is counted (and logged) by now:
	// the frozen ones with their round trip's 5 s bound, the others when
	// refused. None is lost silently.
	deadline := time.Now().Add(2 * redisTimeout)
	for counter(t, ma, "hsrcpay_credential_cache_publish_errors_total", "", "") < 6 {
		if time.Now().After(deadline) {
			t.Fatalf("%v of the 6 announcements made while Redis was away counted as given up",
				counter(t, ma, "hsrcpay_credential_cache_publish_errors_total", "", ""))
		}
		time.Sleep(10 * time.Millisecond)
	}
}
