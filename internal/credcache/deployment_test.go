package credcache

import (
	"crypto/rand"
	"encoding/hex"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

func TestDeploymentChannelNames(t *testing.T) {
	for dep, want := range map[string]string{
		"":          Channel, // unset: the default deployment
		"default":   Channel, // the channel every replica used before names: rolling upgrades keep hearing each other
		"prod-eu":   "hsrcpay:prod-eu:credcache:invalidate",
		"staging_2": "hsrcpay:staging_2:credcache:invalidate",
	} {
		if got := ChannelFor(dep); got != want {
			t.Errorf("ChannelFor(%q) = %q, want %q", dep, got, want)
		}
	}
	if b := NewBus(nil, nil, BusOptions{Deployment: "prod-eu"}); b.Channel() != "hsrcpay:prod-eu:credcache:invalidate" {
		t.Errorf("bus channel %q", b.Channel())
	}
}

// Two deployments on one Redis: a key revoked in deployment A is dropped by
// A's other replica, and not by B's (which holds an entry under the same
// key id), whose invalidation counter does not move for it.
func TestDeploymentInvalidationsStayInTheirDeployment(t *testing.T) {
	needRedis(t)
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	depA, depB := "a-"+hex.EncodeToString(suffix[:]), "b-"+hex.EncodeToString(suffix[:])

	type replica struct {
		c      *Cache
		b      *Bus
		remote *atomic.Int64
	}
	start := func(dep string) replica {
		c := New(Options{TTL: time.Minute, Suspended: true})
		remote := new(atomic.Int64)
		b, _ := startBus(t, c, newProxy(t), BusOptions{Deployment: dep, OnRemote: func() { remote.Add(1) }})
		eventually(t, dep+" subscribed", 5*time.Second, b.Subscribed)
		c.Put(c.Begin(), apikey.Live, hashOf("dep"), key("key_dep", "dep"))
		c.Put(c.Begin(), apikey.Live, hashOf("sentinel"), key("key_sentinel", "sentinel"))
		return replica{c, b, remote}
	}
	a1, a2, b1 := start(depA), start(depA), start(depB)
	if a1.b.Channel() == b1.b.Channel() {
		t.Fatalf("deployments %s and %s share channel %s", depA, depB, a1.b.Channel())
	}

	// A revokes key_dep: its other replica drops it.
	if err := a1.b.Publish(apikey.Live, "key_dep"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A's other replica drops the key", 2*time.Second, func() bool {
		_, hit := a2.c.Get(apikey.Live, hashOf("dep"))
		return !hit
	})
	if a2.remote.Load() != 1 {
		t.Fatalf("A's other replica counted %d invalidations, want 1", a2.remote.Load())
	}

	// Then B announces a change of its own. Redis delivers in the order it
	// published, so once B's replica has B's announcement, A's would have
	// come before it had it been sent to B's channel.
	if err := b1.b.Publish(apikey.Live, "key_sentinel"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B's own announcement arrives", 2*time.Second, func() bool {
		_, hit := b1.c.Get(apikey.Live, hashOf("sentinel"))
		return !hit
	})
	if n := b1.remote.Load(); n != 1 {
		t.Fatalf("B's replica counted %d invalidations, want only its own deployment's 1", n)
	}
	mustHit(t, b1.c, apikey.Live, "dep", "key_dep") // A's revocation did not reach B
	// And B's announcement did not reach A.
	mustHit(t, a2.c, apikey.Live, "sentinel", "key_sentinel")
	if a2.remote.Load() != 1 {
		t.Fatalf("A's replica counted %d invalidations after B's announcement, want 1", a2.remote.Load())
	}
}
