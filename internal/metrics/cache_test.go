package metrics

import (
	"testing"
)

// TestCredentialCacheSeries: the cache's series are served from the start
// (0 before SetCredentialCache), then read from its stats at each scrape.
func TestCredentialCacheSeries(t *testing.T) {
	m := New()
	read := func() map[string]float64 {
		t.Helper()
		mfs, err := m.Registry.Gather()
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]float64{}
		for _, mf := range mfs {
			for _, mt := range mf.GetMetric() {
				name := mf.GetName()
				for _, l := range mt.GetLabel() {
					name += "{" + l.GetValue() + "}"
				}
				out[name] = mt.GetGauge().GetValue() + mt.GetCounter().GetValue()
			}
		}
		return out
	}
	want := map[string]float64{
		"hsrcpay_credential_cache_entries{positive}": 0, "hsrcpay_credential_cache_entries{negative}": 0,
		"hsrcpay_credential_cache_bytes": 0, "hsrcpay_credential_cache_max_bytes": 0,
		"hsrcpay_credential_cache_evictions_total{positive}": 0, "hsrcpay_credential_cache_evictions_total{negative}": 0,
		"hsrcpay_credential_cache_max_entries{positive}": 0, "hsrcpay_credential_cache_max_entries{negative}": 0,
	}
	check := func(got map[string]float64) {
		t.Helper()
		for name, v := range want {
			if g, ok := got[name]; !ok || g != v {
				t.Errorf("%s = %v (served: %v), want %v", name, g, ok, v)
			}
		}
	}
	check(read())
	m.SetCredentialCache(func() CredentialCacheStats {
		return CredentialCacheStats{Entries: 3, NegativeEntries: 4, Bytes: 5000, Evictions: 6, NegativeEvictions: 7,
			MaxEntries: 100_000, MaxNegativeEntries: 10_000, MaxBytes: 128 << 20}
	})
	want = map[string]float64{
		"hsrcpay_credential_cache_entries{positive}": 3, "hsrcpay_credential_cache_entries{negative}": 4,
		"hsrcpay_credential_cache_bytes": 5000, "hsrcpay_credential_cache_max_bytes": 128 << 20,
		"hsrcpay_credential_cache_evictions_total{positive}": 6, "hsrcpay_credential_cache_evictions_total{negative}": 7,
		"hsrcpay_credential_cache_max_entries{positive}": 100_000, "hsrcpay_credential_cache_max_entries{negative}": 10_000,
	}
	check(read())
}
