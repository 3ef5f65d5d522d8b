package sqlite

import (
	"context"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Test hooks into the writer (this file is compiled only into this
// package's tests).

// Batches reports how many batches mode's writer committed or failed, and
// how many units they held.
func Batches(s *Store, m apikey.Mode) (batches, units int64) {
	w := s.repos[m].w
	return w.batches.Load(), w.units.Load()
}

// PagesWritten is how many pages mode's writer's COMMITs appended to the WAL.
func PagesWritten(s *Store, m apikey.Mode) int64 { return s.repos[m].w.pagesWritten.Load() }

// Queued is how many units wait in mode's queue.
func Queued(s *Store, m apikey.Mode) int { return len(s.repos[m].w.queue) }

// Checkpoints is how many background checkpoints mode's file has had.
func Checkpoints(s *Store, m apikey.Mode) int64 { return s.repos[m].checkpoints.Load() }

// FailCommits makes every COMMIT of mode's writer fail while fail is true:
// SQLite's commit hook turns the COMMIT into a rollback
// (SQLITE_CONSTRAINT_COMMITHOOK), as a COMMIT that cannot write its WAL
// frames (SQLITE_FULL, SQLITE_IOERR) fails. Call it while no unit runs.
func FailCommits(s *Store, m apikey.Mode, fail *atomic.Bool) error {
	return s.repos[m].w.conn.Raw(func(dc any) error {
		dc.(interface{ RegisterCommitHook(sqlite3.CommitHookFn) }).RegisterCommitHook(func() int32 {
			if fail.Load() {
				return 1
			}
			return 0
		})
		return nil
	})
}

// AbortTransaction, called from a unit's fn, rolls the writer's whole
// transaction back as SQLite does on SQLITE_FULL, SQLITE_IOERR or
// SQLITE_NOMEM in the middle of a statement, and returns cause as that
// statement's error.
func AbortTransaction(stx store.Tx, cause error) error {
	t := stx.(*tx)
	if _, err := t.w.conn.ExecContext(context.Background(), `ROLLBACK`); err != nil {
		return err
	}
	return t.w.note(cause)
}

// The WAL's documented bounds (writer.go).
const (
	WALBound     = walBound
	WALIdleBound = walIdleBound
)

// WALCheckpoints reports the checkpoints mode's writer ran to keep the WAL
// short, how many completed, and the time it spent in them.
func WALCheckpoints(s *Store, m apikey.Mode) (run, completed int64, spent time.Duration) {
	w := s.repos[m].w
	return w.walCheckpoints.Load(), w.walCompleted.Load(), time.Duration(w.walCheckpointNanos.Load())
}

// DieForTest does to s's instance lock what the kernel does when its process
// is killed: the lock is dropped, the file stays. s must not be used after.
func DieForTest(s *Store) error { return s.inst.lock.Close() }
