package server

import (
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hsrcpay/apikeys/internal/metrics"
)

// requestMetrics counts each request and its latency by operation (and
// status), keeping the series it has used: WithLabelValues would hash the
// labels and take the vector's lock on every request.
type requestMetrics struct {
	m        *metrics.Metrics
	counters sync.Map // opStatus → prometheus.Counter
	latency  sync.Map // operation → prometheus.Observer
}

type opStatus struct {
	op     string
	status int
}

func (r *requestMetrics) observe(op string, status int, elapsed time.Duration) {
	key := opStatus{op, status}
	c, ok := r.counters.Load(key)
	if !ok {
		c, _ = r.counters.LoadOrStore(key, r.m.Requests.WithLabelValues(op, strconv.Itoa(status)))
	}
	c.(prometheus.Counter).Inc()
	o, ok := r.latency.Load(op)
	if !ok {
		o, _ = r.latency.LoadOrStore(op, r.m.Latency.WithLabelValues(op))
	}
	o.(prometheus.Observer).Observe(elapsed.Seconds())
}
