package server

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/credcache"
	"github.com/hsrcpay/apikeys/internal/metrics"
)

// credentials is the credential cache of one replica and the Redis bus that
// keeps it in step with the others. Either may be nil: no cache (TTL 0), or
// no Redis (changes made elsewhere reach this cache within its TTL).
type credentials struct {
	cache   *credcache.Cache
	bus     *credcache.Bus
	metrics *metrics.Metrics
}

func newCredentials(o Options) *credentials {
	m := o.Metrics
	var lookups [credcache.Bypass + 1]prometheus.Counter
	for r := range lookups {
		lookups[r] = m.CacheLookups.WithLabelValues(credcache.Result(r).String())
	}
	cr := &credentials{metrics: m}
	cr.cache = credcache.New(credcache.Options{
		TTL:      o.CredentialCacheTTL,
		Size:     o.CredentialCacheKeys,
		MaxBytes: o.CredentialCacheMemory,
		// With Redis, serve only while subscribed (the bus resumes it): a
		// change announced before then would be missed.
		Suspended: o.Redis != nil,
		OnLookup:  func(r credcache.Result) { lookups[r].Inc() },
	})
	m.SetCredentialCache(func() metrics.CredentialCacheStats {
		s := cr.cache.Stats() // a nil cache: zeros
		return metrics.CredentialCacheStats{
			Entries: s.Entries, NegativeEntries: s.NegativeEntries, Bytes: s.Bytes,
			Evictions: s.Evictions, NegativeEvictions: s.NegativeEvictions,
			MaxEntries: s.MaxEntries, MaxNegativeEntries: s.MaxNegativeEntries, MaxBytes: s.MaxBytes,
		}
	})
	if o.Redis != nil {
		// Built even without a cache of our own: other replicas may cache,
		// and they learn of this replica's changes only from its announcements.
		remote := m.CacheInvalidations.WithLabelValues("remote")
		cr.bus = credcache.NewBus(o.Redis, cr.cache, credcache.BusOptions{
			PublishTimeout: o.RedisPublishTimeout,
			Deployment:     o.Deployment,
			Log:            o.Logger,
			OnRemote:       remote.Inc,
			OnDropped:      func(n int) { m.CachePublishErrors.Add(float64(n)) },
			OnSubscribed: func(up bool) {
				if up {
					m.CacheSubscribed.Set(1)
				} else {
					m.CacheSubscribed.Set(0)
				}
			},
		})
	}
	return cr
}

// changed drops a key from this replica's cache at once (so one replica has
// no delay at all) and queues its announcement to the others, without
// waiting for Redis: the response goes out whether Redis is up, dead or
// frozen. An announcement given up (queue full, Redis failing) is counted
// and logged by the bus with the key's id (never a secret or a hash): the
// other replicas drop the key when their entries expire, within the TTL.
func (cr *credentials) changed(mode apikey.Mode, keyID string) {
	if cr.cache != nil {
		cr.cache.Invalidate(mode, keyID)
		cr.metrics.CacheInvalidations.WithLabelValues("local").Inc()
	}
	if cr.bus == nil {
		return
	}
	_ = cr.bus.Publish(mode, keyID) // a drop is counted and logged by the bus
}

// KeyChanged tells every replica's credential cache that a key changed; the
// use cases call it after each committed change. Anything that changes a key
// in the store outside them (an operator's script, a test) must call it too,
// or the change reaches the caches only when their entries expire.
func (s *Server) KeyChanged(mode apikey.Mode, keyID string) { s.creds.changed(mode, keyID) }

// RunCredentialCache, with Redis, sends this replica's key changes to the
// others and keeps it subscribed to theirs until ctx ends; without Redis it
// returns at once. The cache serves only while this runs and the
// subscription is up, and key changes are announced only while it runs
// (they queue until then, a bounded queue).
func (s *Server) RunCredentialCache(ctx context.Context) {
	if s.creds.bus != nil {
		s.creds.bus.Run(ctx)
	}
}

// FlushCredentialAnnouncements waits until the key changes announced so far
// have been sent to Redis (or given up), or ctx ends: a replica shutting
// down calls it, bounded, before it stops RunCredentialCache.
func (s *Server) FlushCredentialAnnouncements(ctx context.Context) error {
	if s.creds.bus == nil {
		return nil
	}
	return s.creds.bus.Flush(ctx)
}

// CredentialCacheServing reports whether the credential cache answers
// lookups now (on, and with Redis, subscribed).
func (s *Server) CredentialCacheServing() bool { return s.creds.cache.Active() }
