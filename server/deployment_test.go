package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// TestDeploymentInvalidationsOnOneRedis: two deployments (each its own
// database, HSRCPAY_DEPLOYMENT apart) share one Redis. A key deleted in
// deployment A is refused at once by A's other replica, which counts the
// announcement; deployment B's replica never hears it: its remote
// invalidations are exactly the echoes of its own changes.
func TestDeploymentInvalidationsOnOneRedis(t *testing.T) {
	rurl := redisURL(t)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	depA, depB := "dep-a-"+hex.EncodeToString(suffix[:]), "dep-b-"+hex.EncodeToString(suffix[:])
	urlA, urlB := storetest.FreshPostgresDB(t), storetest.FreshPostgresDB(t)
	ma1, ma2, mb := metrics.New(), metrics.New(), metrics.New()
	a1 := testenv.New(t, testenv.Config{Store: openPostgres(t, urlA), RedisURL: rurl, Deployment: depA, Metrics: ma1})
	a2 := testenv.New(t, testenv.Config{Store: openPostgres(t, urlA), RedisURL: rurl, Deployment: depA, Metrics: ma2})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, urlB), RedisURL: rurl, Deployment: depB, Metrics: mb})
	for _, e := range []*testenv.Env{a1, a2, b} {
		e.WaitCredentialCacheServing()
	}
	read := client.Permissions{"account:api:key": {"read"}}
	mA := a1.Bootstrap("acct_dep_a")[apikey.Sandbox]
	kA, err := a1.Client(mA.Secret).CreateAPIKey(ctx, "acct_dep_a", newKeyReq("deployment a", read))
	if err != nil {
		t.Fatal(err)
	}
	warm(t, a2, kA.Key)
	mB := b.Bootstrap("acct_dep_b")[apikey.Sandbox]
	kB, err := b.Client(mB.Secret).CreateAPIKey(ctx, "acct_dep_b", newKeyReq("deployment b", read))
	if err != nil {
		t.Fatal(err)
	}
	warm(t, b, kB.Key)

	const inv = "hsrcpay_credential_cache_invalidations_total"
	remote := func(m *metrics.Metrics) float64 { return counter(t, m, inv, "origin", "remote") }
	local := func(m *metrics.Metrics) float64 { return counter(t, m, inv, "origin", "local") }

	// A deletes its key: A's other replica refuses it within the bound.
	before := remote(ma2)
	start := time.Now()
	if _, err := deleteKey(t, a1.Client(mA.Secret), kA.ID); err != nil {
		t.Fatal(err)
	}
	t.Logf("A's other replica refused the deleted key after %v", refusedWithin(t, a2, kA.Key, start, time.Second).Round(time.Millisecond))
	if remote(ma2) <= before {
		t.Fatalf("A's other replica counted no remote invalidation (%v before, %v after)", before, remote(ma2))
	}

	// Then B changes a key of its own. Redis delivers in publishing order,
	// so once B's replica has the echo of this last change, A's deletion
	// would have reached it first had it been published on B's channel.
	if _, err := deleteKey(t, b.Client(mB.Secret), kB.ID); err != nil {
		t.Fatal(err)
	}
	refusedNow(t, b, kB.Key)
	deadline := time.Now().Add(2 * time.Second)
	for remote(mb) < local(mb) {
		if time.Now().After(deadline) {
			t.Fatalf("B heard %v of its own %v announcements", remote(mb), local(mb))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r, l := remote(mb), local(mb); r != l {
		t.Fatalf("B's replica counted %v remote invalidations for its own %v changes: A's announcements reached it", r, l)
	}
	if local(ma1) == 0 {
		t.Fatal("A announced nothing: the test proves nothing")
	}
}
