package server

import (
	"context"
	"log/slog"

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
	log     *slog.Logger
	metrics *metrics.Metrics
}

func newCredentials(o Options) *credentials {
	m := o.Metrics
	var lookups [credcache.Bypass + 1]prometheus.Counter
	for r := range lookups {
		lookups[r] = m.CacheLookups.WithLabelValues(credcache.Result(r).String())
	}
	cr := &credentials{log: o.Logger, metrics: m}
	cr.cache = credcache.New(credcache.Options{
		TTL: o.CredentialCacheTTL,
		// With Redis, serve only while subscribed (the bus resumes it): a
		// change announced before then would be missed.
		Suspended: o.Redis != nil,
		OnLookup:  func(r credcache.Result) { lookups[r].Inc() },
	})
	if o.Redis != nil {
		// Built even without a cache of our own: other replicas may cache,
		// and they learn of this replica's changes only from its announcements.
		remote := m.CacheInvalidations.WithLabelValues("remote")
		cr.bus = credcache.NewBus(o.Redis, cr.cache, credcache.BusOptions{
			Log:      o.Logger,
			OnRemote: remote.Inc,
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
// no delay at all) and announces it to the others. A failed announcement is
// logged with the key's id (never a secret or a hash): the other replicas
// drop the key when their entries expire, within the TTL.
func (cr *credentials) changed(mode apikey.Mode, keyID string) {
	if cr.cache != nil {
		cr.cache.Invalidate(mode, keyID)
		cr.metrics.CacheInvalidations.WithLabelValues("local").Inc()
	}
	if cr.bus == nil {
		return
	}
	if err := cr.bus.Publish(mode, keyID); err != nil {
		cr.metrics.CachePublishErrors.Inc()
		cr.log.Warn("credential cache: key change not announced through Redis; other replicas refuse its old state when their cache entries expire (HSRCPAY_CREDENTIAL_CACHE_TTL)",
			"mode", string(mode), "key_id", keyID, "err", err)
	}
}

// KeyChanged tells every replica's credential cache that a key changed; the
// use cases call it after each committed change. Anything that changes a key
// in the store outside them (an operator's script, a test) must call it too,
// or the change reaches the caches only when their entries expire.
func (s *Server) KeyChanged(mode apikey.Mode, keyID string) { s.creds.changed(mode, keyID) }

// RunCredentialCache keeps this replica subscribed to the other replicas'
// key changes until ctx ends. With Redis and a cache, the cache serves only
// while this runs and the subscription is up; otherwise it returns at once.
func (s *Server) RunCredentialCache(ctx context.Context) {
	if s.creds.bus != nil {
		s.creds.bus.Run(ctx)
	}
}

// CredentialCacheServing reports whether the credential cache answers
// lookups now (on, and with Redis, subscribed).
func (s *Server) CredentialCacheServing() bool { return s.creds.cache.Active() }
