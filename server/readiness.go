package server

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Readiness (GET /readyz) says whether this replica can serve: 200 when the
// store answers (Ping) and accepts writes, 503 otherwise. Whether it accepts
// writes is the outcome of the latest write, real or probed: every unit of
// work the server runs is watched (a commit is proof, a failure the stores
// mark unavailable, e.g. a full disk, is disproof; a refusal such as a
// duplicate name says nothing), and when the latest is older than
// writeProbeEvery, readyz probes with the store's own tiny write
// (store.WritePinger: SQLite commits a header change through its writer;
// PostgreSQL commits a transaction given an id). So a busy replica is judged
// by its traffic for free, and an idle one costs at most one probe write per
// writeProbeEvery, however often it is polled.
const writeProbeEvery = 3 * time.Second

// readyzTimeout bounds a readiness check (the store timeout may be longer).
const readyzTimeout = 2 * time.Second

// writeWatch keeps when the store last accepted and last refused a write.
type writeWatch struct {
	okAt, failAt atomic.Int64 // unix nanoseconds; 0: never
	probing      sync.Mutex   // one probe at a time; others use the latest outcome
	unavailable  prometheus.Counter
}

// note records a write's outcome: nil (committed) or a store that was
// unavailable. Other errors (a refusal, a bug, a caller that went away) say
// nothing about whether the store takes writes.
func (w *writeWatch) note(err error) {
	switch {
	case err == nil:
		w.okAt.Store(time.Now().UnixNano())
	case errors.Is(err, store.ErrUnavailable):
		w.failAt.Store(time.Now().UnixNano())
		if w.unavailable != nil {
			w.unavailable.Inc()
		}
	}
}

// writable reports whether the store accepts writes: the latest outcome when
// it is recent, a fresh probe otherwise.
func (w *writeWatch) writable(ctx context.Context, probe func(context.Context) error) bool {
	ok, fail := w.okAt.Load(), w.failAt.Load()
	if time.Since(time.Unix(0, max(ok, fail))) < writeProbeEvery || !w.probing.TryLock() {
		return fail <= ok
	}
	defer w.probing.Unlock()
	err := probe(ctx)
	w.note(err)
	return err == nil
}

// wrap returns s with every unit of work and usage write watched, and
// PingWrite forwarded (and watched).
func (w *writeWatch) wrap(s store.Store) store.Store {
	ws := &watchedStore{Store: s, w: w, repos: map[apikey.Mode]store.Repository{}}
	for _, m := range apikey.Modes {
		ws.repos[m] = &watchedRepo{Repository: s.Repo(m), w: w}
	}
	return ws
}

type watchedStore struct {
	store.Store
	w     *writeWatch
	repos map[apikey.Mode]store.Repository
}

func (s *watchedStore) Repo(m apikey.Mode) store.Repository { return s.repos[m] }

func (s *watchedStore) PingWrite(ctx context.Context) error { return store.PingWrite(ctx, s.Store) }

type watchedRepo struct {
	store.Repository
	w *writeWatch
}

func (r *watchedRepo) InTx(ctx context.Context, fn func(store.Tx) error) error {
	err := r.Repository.InTx(ctx, fn)
	r.w.note(err)
	return err
}

func (r *watchedRepo) RecordUsage(ctx context.Context, batch []store.Usage) error {
	err := r.Repository.RecordUsage(ctx, batch)
	if len(batch) > 0 {
		r.w.note(err)
	}
	return err
}

// SpendCredits is a write too (a verify of a key with credits): its outcome
// says whether the store takes writes, as every unit's does.
func (r *watchedRepo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (int64, bool, error) {
	remaining, ok, err := r.Repository.SpendCredits(ctx, id, cost, now)
	r.w.note(err)
	return remaining, ok, err
}

func (s *Server) readyz(c echo.Context) error {
	if s.draining.Load() {
		s.metrics.Readiness.WithLabelValues("shutting_down").Inc()
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "shutting down"})
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), readyzTimeout)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("readiness check failed", "err", err)
		s.metrics.Readiness.WithLabelValues("store_unreachable").Inc()
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "store unreachable"})
	}
	if !s.writes.writable(ctx, func(ctx context.Context) error { return store.PingWrite(ctx, s.store) }) {
		s.log.Warn("readiness check failed: the store refuses writes")
		s.metrics.Readiness.WithLabelValues("store_refuses_writes").Inc()
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "store refuses writes"})
	}
	s.metrics.Readiness.WithLabelValues("ready").Inc()
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}
