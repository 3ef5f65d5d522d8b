package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// gauge reads one series of a gauge (0 when absent); label "" takes the
// first series.
func gauge(t *testing.T, m *metrics.Metrics, name, label, value string) (float64, bool) {
	t.Helper()
	_, g, ok := metricSeries(t, m, name, label, value)
	return g, ok
}

// TestCredentialCacheBoundsAndMetrics: the server's cache holds at most
// CredentialCacheKeys keys (the least recently used evicted), and /metrics
// tells its hits and misses, size, memory, evictions and bounds.
func TestCredentialCacheBoundsAndMetrics(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		m := metrics.New()
		cfg.Metrics, cfg.CredentialCacheTTL, cfg.CredentialCacheKeys = m, time.Minute, 3
		env := testenv.New(t, cfg)
		mk := env.Bootstrap(acct)[apikey.Sandbox]
		read := client.Permissions{"account:api:key": {"read"}}
		var secrets []string
		for i := range 5 {
			secrets = append(secrets, customKey(t, env, mk, fmt.Sprintf("bounded %d", i), read, nil).Key)
		}
		misses := counter(t, m, "hsrcpay_credential_cache_lookups_total", "result", "miss")
		hits := cacheHits(t, m)
		warm(t, env, secrets...) // each: a miss, then a hit
		if got := counter(t, m, "hsrcpay_credential_cache_lookups_total", "result", "miss") - misses; got != 5 {
			t.Errorf("%v misses, want 5", got)
		}
		if got := cacheHits(t, m) - hits; got != 5 {
			t.Errorf("%v hits, want 5", got)
		}
		if n, _ := gauge(t, m, "hsrcpay_credential_cache_entries", "kind", "positive"); n != 3 {
			t.Errorf("%v entries, want the bound 3", n)
		}
		if n, _ := gauge(t, m, "hsrcpay_credential_cache_max_entries", "kind", "positive"); n != 3 {
			t.Errorf("max_entries %v, want 3", n)
		}
		if n := counter(t, m, "hsrcpay_credential_cache_evictions_total", "kind", "positive"); n < 3 {
			t.Errorf("%v evictions, want at least 3 (6 keys used, 3 held)", n)
		}
		if n, _ := gauge(t, m, "hsrcpay_credential_cache_bytes", "", ""); n < 3*500 || n > 3*5000 {
			t.Errorf("%v bytes for 3 entries", n)
		}
		if n, _ := gauge(t, m, "hsrcpay_credential_cache_max_bytes", "", ""); n != 128<<20 {
			t.Errorf("max_bytes %v, want the default 128 MiB", n)
		}
		// The oldest went: its next use is a miss again, and still works.
		misses = counter(t, m, "hsrcpay_credential_cache_lookups_total", "result", "miss")
		if !authenticates(t, env, secrets[0]) {
			t.Fatal("an evicted key is refused")
		}
		if got := counter(t, m, "hsrcpay_credential_cache_lookups_total", "result", "miss") - misses; got != 1 {
			t.Errorf("%v misses for the evicted key, want 1", got)
		}
	})
}

// TestCredentialCacheMetricsWithoutCache: a server without a cache still
// exports the series, at 0, so dashboards and alerts find them.
func TestCredentialCacheMetricsWithoutCache(t *testing.T) {
	m := metrics.New()
	testenv.New(t, testenv.Config{Metrics: m, NoCredentialCache: true})
	for _, name := range []string{"hsrcpay_credential_cache_entries", "hsrcpay_credential_cache_bytes", "hsrcpay_credential_cache_max_entries", "hsrcpay_credential_cache_max_bytes"} {
		if v, ok := gauge(t, m, name, "", ""); !ok || v != 0 {
			t.Errorf("%s: %v, %v; want 0", name, v, ok)
		}
	}
}
