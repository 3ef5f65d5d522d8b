// Package metrics defines the Prometheus series the server exports on /metrics.
package metrics

import (
	"net/http"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hsrcpay/apikeys/internal/buildinfo"
)

// Metrics holds the collectors; each server has its own registry so tests
// can run several servers in one process.
type Metrics struct {
	Registry      *prometheus.Registry
	Requests      *prometheus.CounterVec   // operation, status
	Latency       *prometheus.HistogramVec // operation
	AuthFailures  *prometheus.CounterVec   // reason
	RateLimited   *prometheus.CounterVec   // budget (credential, account, client_address), mode (none for client_address)
	LimiterErrors prometheus.Counter
	LeakedTokens  *prometheus.CounterVec // label (true_positive, false_positive), action (deleted, rotated, grace_ended, public, none)

	// The credential cache (internal/credcache).
	CacheLookups       *prometheus.CounterVec // result: hit, negative_hit, miss, bypass
	CacheInvalidations *prometheus.CounterVec // origin: local (a change made here), remote (announced by a replica)
	CachePublishErrors prometheus.Counter
	CacheSubscribed    prometheus.Gauge
	// cacheStats feeds the cache's sizes and evictions, read at each scrape
	// (SetCredentialCache): nothing on the request path.
	cacheStats *cacheCollector
	// ResponsesValidated counts the responses checked against the spec
	// (HSRCPAY_VALIDATE_RESPONSES), by result: valid, or invalid (each
	// answered with a logged 500).
	ResponsesValidated *prometheus.CounterVec // result
	// BuildInfo is 1, labelled with what this binary is (internal/buildinfo):
	// which version each replica runs, for dashboards and rollouts.
	BuildInfo *prometheus.GaugeVec // version, revision, go_version

	// Idempotency counts the requests with an Idempotency-Key by what the
	// key's record made of them (server/idempotency.go).
	Idempotency *prometheus.CounterVec // operation, outcome
	// Readiness counts /readyz answers by result: ready, shutting_down,
	// store_unreachable, store_refuses_writes.
	Readiness *prometheus.CounterVec // result
	// StoreUnavailable counts the units of work and usage writes that
	// failed because the store was unavailable (each answered 503 or retried).
	StoreUnavailable prometheus.Counter
}

func New() *Metrics {
	m := &Metrics{
		Registry: prometheus.NewRegistry(),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_http_requests_total", Help: "Requests by operation (or route_not_found) and status.",
		}, []string{"operation", "status"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "hsrcpay_http_request_duration_seconds", Help: "Request latency by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"operation"}),
		AuthFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_auth_failures_total", Help: "Authentication failures by reason.",
		}, []string{"reason"}),
		RateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_rate_limited_total",
			Help: "Requests rejected with 429, by the budget spent (credential or account: 42900; client_address: 42901, failed authentications) and mode.",
		}, []string{"budget", "mode"}),
		LimiterErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hsrcpay_rate_limiter_errors_total", Help: "Shared limiter (Redis) failures; each fell back to the in-memory limiter.",
		}),
		ResponsesValidated: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_responses_validated_total",
			Help: "Responses checked against openapi.yaml (all, or the sample HSRCPAY_VALIDATE_RESPONSES sets), by result: valid, or invalid (answered with a logged 500).",
		}, []string{"result"}),
		LeakedTokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_secret_scanning_tokens_total",
			Help: "Tokens reported by secret scanning (GitHub), by label (true_positive: a leaked secret of ours; false_positive: not ours, or a publishable key, public by design) and what the report did (deleted, rotated, grace_ended, public: a publishable key left unchanged, none).",
		}, []string{"label", "action"}),
		CacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_credential_cache_lookups_total",
			Help: "API-key lookups by what the credential cache had: hit, negative_hit (a hash known to match no key), miss (read from the store), bypass (cache suspended: its invalidation subscription is down).",
		}, []string{"result"}),
		CacheInvalidations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_credential_cache_invalidations_total",
			Help: "Keys dropped from the credential cache: origin local (changed by this replica) or remote (announced by a replica through Redis).",
		}, []string{"origin"}),
		CachePublishErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hsrcpay_credential_cache_publish_errors_total",
			Help: "Key changes that could not be announced through Redis; other replicas drop those keys when their entries expire (HSRCPAY_CREDENTIAL_CACHE_TTL).",
		}),
		CacheSubscribed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "hsrcpay_credential_cache_subscribed",
			Help: "1 while this replica receives the other replicas' invalidations through Redis (its credential cache serves), else 0.",
		}),
		BuildInfo: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "hsrcpay_build_info",
			Help: "Always 1; its labels say which build this replica runs: version (make build stamps git describe), VCS revision and Go version.",
		}, []string{"version", "revision", "go_version"}),
		Idempotency: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_idempotency_requests_total",
			Help: "Creates and regenerates with an Idempotency-Key, by operation and outcome: claimed (ran), replayed (the stored answer), in_progress (409, still running), not_replayable (409, completed but no answer to give), key_reused (422, another request's key), refused (the stored answer's policy said no).",
		}, []string{"operation", "outcome"}),
		Readiness: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hsrcpay_readiness_checks_total",
			Help: "GET /readyz answers by result: ready, shutting_down, store_unreachable, store_refuses_writes.",
		}, []string{"result"}),
		StoreUnavailable: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hsrcpay_store_unavailable_total",
			Help: "Writes (units of work, usage flushes) that failed because the store was unavailable: unreachable, slower than HSRCPAY_STORE_TIMEOUT, or out of space.",
		}),
	}
	m.cacheStats = newCacheCollector()
	bi := buildinfo.Read()
	m.BuildInfo.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
	m.Registry.MustRegister(m.Idempotency, m.Readiness, m.StoreUnavailable)
	m.Registry.MustRegister(m.Requests, m.BuildInfo, m.Latency, m.AuthFailures, m.RateLimited, m.LimiterErrors, m.LeakedTokens,
		m.CacheLookups, m.CacheInvalidations, m.CachePublishErrors, m.CacheSubscribed, m.cacheStats, m.ResponsesValidated,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
}

// CredentialCacheStats is what the credential cache holds and has evicted
// (credcache.Stats).
type CredentialCacheStats struct {
	Entries, NegativeEntries       int   // held now
	Bytes                          int64 // their estimated memory
	Evictions, NegativeEvictions   int64 // pushed out by the bounds since the start
	MaxEntries, MaxNegativeEntries int   // the bounds
	MaxBytes                       int64
}

// SetCredentialCache makes /metrics read the credential cache's sizes and
// evictions from stats at each scrape; until it is called (or with a server
// that caches nothing) they are 0. Hits and misses are
// hsrcpay_credential_cache_lookups_total, counted as they happen.
func (m *Metrics) SetCredentialCache(stats func() CredentialCacheStats) {
	m.cacheStats.stats.Store(&stats)
}

// cacheCollector reads the credential cache's Stats at each scrape.
type cacheCollector struct {
	stats                                 atomic.Pointer[func() CredentialCacheStats]
	entries, bytes, evictions, maxEntries *prometheus.Desc
	maxBytes                              *prometheus.Desc
}

func newCacheCollector() *cacheCollector {
	kind := []string{"kind"}
	return &cacheCollector{
		entries: prometheus.NewDesc("hsrcpay_credential_cache_entries",
			"Entries the credential cache holds, by kind: positive (a key's snapshot) or negative (a hash known to match no key); expired ones not yet dropped included.", kind, nil),
		bytes: prometheus.NewDesc("hsrcpay_credential_cache_bytes",
			"Memory the credential cache's entries take, as estimated per entry when cached (the bound HSRCPAY_CREDENTIAL_CACHE_MEMORY applies to the positive ones).", nil, nil),
		evictions: prometheus.NewDesc("hsrcpay_credential_cache_evictions_total",
			"Entries the credential cache dropped to stay within its bounds (HSRCPAY_CREDENTIAL_CACHE_KEYS, HSRCPAY_CREDENTIAL_CACHE_MEMORY; 10000 negative), by kind; expired, invalidated and flushed entries are not counted. A steady rate with a low hit rate: the bounds are too small for the keys in use.", kind, nil),
		maxEntries: prometheus.NewDesc("hsrcpay_credential_cache_max_entries",
			"The credential cache's bound on entries, by kind (HSRCPAY_CREDENTIAL_CACHE_KEYS for positive); 0 without a cache.", kind, nil),
		maxBytes: prometheus.NewDesc("hsrcpay_credential_cache_max_bytes",
			"The credential cache's bound on its positive entries' estimated memory (HSRCPAY_CREDENTIAL_CACHE_MEMORY); 0 without a cache.", nil, nil),
	}
}

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.entries, c.bytes, c.evictions, c.maxEntries, c.maxBytes} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	var s CredentialCacheStats
	if f := c.stats.Load(); f != nil {
		s = (*f)()
	}
	gauge, counter := prometheus.GaugeValue, prometheus.CounterValue
	ch <- prometheus.MustNewConstMetric(c.entries, gauge, float64(s.Entries), "positive")
	ch <- prometheus.MustNewConstMetric(c.entries, gauge, float64(s.NegativeEntries), "negative")
	ch <- prometheus.MustNewConstMetric(c.bytes, gauge, float64(s.Bytes))
	ch <- prometheus.MustNewConstMetric(c.evictions, counter, float64(s.Evictions), "positive")
	ch <- prometheus.MustNewConstMetric(c.evictions, counter, float64(s.NegativeEvictions), "negative")
	ch <- prometheus.MustNewConstMetric(c.maxEntries, gauge, float64(s.MaxEntries), "positive")
	ch <- prometheus.MustNewConstMetric(c.maxEntries, gauge, float64(s.MaxNegativeEntries), "negative")
	ch <- prometheus.MustNewConstMetric(c.maxBytes, gauge, float64(s.MaxBytes))
}
