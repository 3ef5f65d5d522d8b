package metrics

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// WatchStore exports st's own state, read at each scrape (nothing is paid
// between scrapes): PostgreSQL's connection pool (a store with Pool, as
// postgres.Store), or SQLite's writers and WAL files (store.WriterStatser).
// A store that has neither exports nothing. One store per Metrics: a
// second one's series would collide with the first's, and are not exported.
func (m *Metrics) WatchStore(st store.Store) {
	if p, ok := st.(interface{ Pool() *pgxpool.Pool }); ok {
		_ = m.Registry.Register(&poolCollector{pool: p.Pool()}) // refused only for a second store: see above
	}
	if w, ok := st.(store.WriterStatser); ok {
		_ = m.Registry.Register(&writerCollector{st: w})
	}
}

var (
	poolConns = prometheus.NewDesc("hsrcpay_store_pool_connections",
		"PostgreSQL pool connections by state: acquired (in use), idle, constructing.", []string{"state"}, nil)
	poolMax = prometheus.NewDesc("hsrcpay_store_pool_max_connections",
		"PostgreSQL pool size limit (pool_max_conns).", nil, nil)
	poolAcquires = prometheus.NewDesc("hsrcpay_store_pool_acquires_total",
		"Connections taken from the PostgreSQL pool.", nil, nil)
	poolEmptyAcquires = prometheus.NewDesc("hsrcpay_store_pool_empty_acquires_total",
		"Acquires that found no idle connection and waited for one (or for a new one).", nil, nil)
	poolCanceled = prometheus.NewDesc("hsrcpay_store_pool_canceled_acquires_total",
		"Acquires given up because their context ended (HSRCPAY_STORE_TIMEOUT, a client gone).", nil, nil)
	poolWait = prometheus.NewDesc("hsrcpay_store_pool_acquire_wait_seconds_total",
		"Time spent waiting for a connection by the acquires that found none idle.", nil, nil)

	writerQueue = prometheus.NewDesc("hsrcpay_sqlite_writer_queue",
		"Units of work waiting for the SQLite writer, by mode.", []string{"mode"}, nil)
	writerBatches = prometheus.NewDesc("hsrcpay_sqlite_writer_batches_total",
		"Transactions the SQLite writer ran (each commits a batch of units), by mode.", []string{"mode"}, nil)
	writerUnits = prometheus.NewDesc("hsrcpay_sqlite_writer_units_total",
		"Units of work the SQLite writer ran, by mode: divided by batches, the mean batch size.", []string{"mode"}, nil)
	walBytes = prometheus.NewDesc("hsrcpay_sqlite_wal_bytes",
		"Size of the SQLite WAL file, by mode (read at scrape; the writer keeps it below ~20 MiB and empties it when idle).", []string{"mode"}, nil)
)

type poolCollector struct{ pool *pgxpool.Pool }

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolMax, poolAcquires, poolEmptyAcquires, poolCanceled, poolWait} {
		ch <- d
	}
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(poolConns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(poolMax, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(poolAcquires, prometheus.CounterValue, float64(s.AcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolEmptyAcquires, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolCanceled, prometheus.CounterValue, float64(s.CanceledAcquireCount()))
	ch <- prometheus.MustNewConstMetric(poolWait, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}

type writerCollector struct{ st store.WriterStatser }

func (c *writerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{writerQueue, writerBatches, writerUnits, walBytes} {
		ch <- d
	}
}

func (c *writerCollector) Collect(ch chan<- prometheus.Metric) {
	for _, m := range apikey.Modes {
		s := c.st.WriterStats(m)
		mode := string(m)
		ch <- prometheus.MustNewConstMetric(writerQueue, prometheus.GaugeValue, float64(s.Queued), mode)
		ch <- prometheus.MustNewConstMetric(writerBatches, prometheus.CounterValue, float64(s.Batches), mode)
		ch <- prometheus.MustNewConstMetric(writerUnits, prometheus.CounterValue, float64(s.Units), mode)
		ch <- prometheus.MustNewConstMetric(walBytes, prometheus.GaugeValue, float64(s.WALBytes), mode)
	}
}
