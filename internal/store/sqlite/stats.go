package sqlite

import (
	"os"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// System names the database system for traces and metrics.
func (s *Store) System() string { return "sqlite" }

// WriterStats reports mode's writer: its queue, what it has committed, and
// the WAL file's size (a stat of DIR/<mode>.db-wal; the writer keeps it
// bounded, see writer.go, and the gauge shows it).
func (s *Store) WriterStats(m apikey.Mode) store.WriterStats {
	r := s.repos[m]
	if r == nil || r.w == nil {
		return store.WriterStats{}
	}
	st := store.WriterStats{Queued: len(r.w.queue), Batches: r.w.batches.Load(), Units: r.w.units.Load()}
	if fi, err := os.Stat(r.path + "-wal"); err == nil {
		st.WALBytes = fi.Size()
	}
	return st
}
