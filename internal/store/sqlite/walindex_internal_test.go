package sqlite

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestRetryNeverPassesHardPages: a restart that readers prevented below
// walHardPages is tried again at walHardPages at the latest, where the
// writer waits for readers, so that the WAL never passes walHardPages by
// more than the batch that crossed it (walBound). A retry at
// frames+walRetryPages let the WAL reach walHardPages+walRetryPages first.
func TestRetryNeverPassesHardPages(t *testing.T) {
	for f := walRestartPages; f < walHardPages+2*walRetryPages; f++ {
		r := retryAt(f)
		if r <= f {
			t.Fatalf("retryAt(%d) = %d: never later than now", f, r)
		}
		if f < walHardPages && r > walHardPages {
			t.Fatalf("retryAt(%d) = %d, past walHardPages %d", f, r, walHardPages)
		}
	}
}

// walLength is SQLite's own count of the frames in the WAL (a PASSIVE
// checkpoint reports it, copying what it can).
func walLength(t *testing.T, s *Store, m apikey.Mode) int {
	t.Helper()
	var busy, log, moved int
	if err := s.DB(m).QueryRowContext(t.Context(), `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &moved); err != nil {
		t.Fatal(err)
	}
	return log
}

// writerFrames is the writer's picture of the WAL's length, read on its
// own goroutine (in a unit).
func writerFrames(t *testing.T, r *Repo, reset bool) int {
	t.Helper()
	var n int
	err := r.InTx(t.Context(), func(stx store.Tx) error {
		tx := stx.(*tx)
		n = tx.w.walFrames
		if reset {
			tx.w.walFrames = 0
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestWALFramesAreSQLites: the writer's length of the WAL, which decides
// when it restarts it, is SQLite's after every COMMIT, not what it counted
// since it last believed the WAL restarted: a RESTART checkpoint that
// reports success may still not restart the WAL (a reader taking a read
// mark just after it), and a tool writing through Store.DB appends frames
// the writer never wrote.
func TestWALFramesAreSQLites(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	m := apikey.Live
	r := s.repos[m]
	if err := store.CreateAccount(ctx, r, "acct_1", time.Now()); err != nil {
		t.Fatal(err)
	}
	insert := func(from, n int) {
		for i := from; i < from+n; i++ {
			now := time.Now().UTC()
			k := &apikey.Key{ID: fmt.Sprintf("key_%04d", i), AccountID: "acct_1", Name: fmt.Sprintf("k%d", i),
				Type: apikey.TypeSecret, SecretHash: fmt.Appendf(nil, "hash %d", i), Status: apikey.StatusActive,
				CreatedAt: now, UpdatedAt: now}
			if err := store.InsertKey(ctx, r, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	insert(0, 20)

	// The writer believes the WAL restarted; SQLite did not restart it.
	writerFrames(t, r, true)
	insert(20, 1)
	if got, want := writerFrames(t, r, false), walLength(t, s, m); got != want {
		t.Errorf("after a restart that did not happen: the writer counts %d frames, SQLite %d", got, want)
	}

	// Frames another connection appended.
	if _, err := s.DB(m).ExecContext(ctx, `UPDATE api_keys SET metadata = '{"a":"b"}'`); err != nil {
		t.Fatal(err)
	}
	insert(21, 1)
	if got, want := writerFrames(t, r, false), walLength(t, s, m); got != want {
		t.Errorf("after a write through Store.DB: the writer counts %d frames, SQLite %d", got, want)
	}
}
