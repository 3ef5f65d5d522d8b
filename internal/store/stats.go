package store

import "github.com/hsrcpay/apikeys/internal/apikey"

// WriterStats is what a SQLite repository's writer reports, for metrics.
type WriterStats struct {
	Queued   int   // units waiting for the writer now
	Batches  int64 // transactions committed (or attempted) so far
	Units    int64 // units run in them so far
	WALBytes int64 // the WAL file's size now (0: none)
}

// WriterStatser is a Store with one writer per mode (SQLite).
type WriterStatser interface {
	WriterStats(apikey.Mode) WriterStats
}
