package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// walSize is the size of the WAL beside file (0 when there is none).
func walSize(t *testing.T, file string) int64 {
	t.Helper()
	fi, err := os.Stat(file + "-wal")
	if errors.Is(err, fs.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestWALBounded (issue 18): under sustained concurrent writes, with readers
// busy on the read pool as in the server, the WAL stays under the
// documented bound at every sample (every 100 ms); once the load stops it is
// truncated within the documented idle delay, and Close leaves none.
// Before the writer owned the checkpoints, 20 s of this took the WAL to
// 165-954 MiB (as the machine allowed), the first sample above the bound came
// within a second, and the WAL kept its size idle and after Close.
func TestWALBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("20 s of continuous writes")
	}
	dir := t.TempDir()
	st, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = st.Close()
		}
	})
	r := st.Repo(apikey.Live)
	if err := store.CreateAccount(t.Context(), r, acct, time.Now()); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, sqlite.FileNames[apikey.Live])
	const (
		load     = 20 * time.Second
		writers  = 32 // as many as the bench's wrk connections
		readers  = 4
		idleWait = sqlite.WALIdleBound
		smallWAL = 64 << 10
	)
	bound := int64(sqlite.WALBound)
	start := time.Now()
	ctx, stop := context.WithTimeout(t.Context(), load)
	defer stop()

	var (
		wg       sync.WaitGroup
		created  atomic.Int64
		lastID   atomic.Value
		firstErr atomic.Value
	)
	fail := func(err error) {
		if err != nil && ctx.Err() == nil {
			firstErr.CompareAndSwap(nil, err)
			stop()
		}
	}
	for w := range writers {
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("key_%02d_%07d", w, i)
				k := testKey(id, id)
				// Metadata and permissions as the bench's creates carry: a realistic row.
				k.Metadata = map[string]string{"team": "wal", "purpose": "a key made to grow the write-ahead log"}
				k.Permissions = map[string][]string{"payment": {"create", "read"}, "refund": {"read"}}
				err := store.InsertKey(ctx, r, k)
				if err == nil {
					created.Add(1)
					lastID.Store(id)
				}
				fail(err)
			}
		})
	}
	// Readers as the server has them: a key lookup per request (the
	// credential, then the key a request names), and now and then a page of
	// keys, which holds its snapshot longer.
	for range readers {
		wg.Go(func() {
			for ctx.Err() == nil {
				id, ok := lastID.Load().(string)
				if !ok {
					time.Sleep(time.Millisecond)
					continue
				}
				_, err := r.KeyBySecretHash(ctx, []byte("hash of "+id))
				fail(err)
				_, err = r.GetKey(ctx, id)
				fail(err)
			}
		})
	}
	wg.Go(func() {
		for ctx.Err() == nil {
			_, err := r.ListKeys(ctx, store.KeyFilter{AccountID: acct, Limit: 100})
			fail(err)
			time.Sleep(10 * time.Millisecond)
		}
	})
	var maxSize int64
	tick := time.NewTicker(100 * time.Millisecond)
	samples := 0
	for ctx.Err() == nil {
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
		n := walSize(t, file)
		samples++
		maxSize = max(maxSize, n)
		if n > bound {
			t.Errorf("after %d samples (%d keys created): WAL %d bytes, above the bound %d", samples, created.Load(), n, bound)
			stop()
		}
	}
	tick.Stop()
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d keys created in %v; WAL at most %.1f MiB over %d samples (bound %.1f MiB)",
		created.Load(), time.Since(start).Round(time.Millisecond), float64(maxSize)/(1<<20), samples, float64(bound)/(1<<20))
	run, completed, spent := sqlite.WALCheckpoints(st, apikey.Live)
	t.Logf("the writer ran %d checkpoints (%d completed) and spent %v in them", run, completed, spent.Round(time.Millisecond))
	if created.Load() < 1000 {
		t.Fatalf("only %d keys created: no load to speak of", created.Load())
	}

	// Idle: truncated within the documented delay, while a reader keeps reading.
	idle := time.Now()
	rctx, rstop := context.WithCancel(t.Context())
	wg.Go(func() {
		for rctx.Err() == nil {
			_, _ = r.ListKeys(rctx, store.KeyFilter{AccountID: acct, Limit: 10})
			time.Sleep(time.Millisecond)
		}
	})
	n := walSize(t, file)
	for n > smallWAL && time.Since(idle) < idleWait {
		time.Sleep(20 * time.Millisecond)
		n = walSize(t, file)
	}
	rstop()
	wg.Wait()
	if n > smallWAL {
		t.Errorf("WAL %d bytes %v after the load stopped, want at most %d", n, time.Since(idle).Round(time.Millisecond), smallWAL)
	} else {
		t.Logf("WAL %d bytes %v after the load stopped", n, time.Since(idle).Round(time.Millisecond))
	}

	// A burst, then Close at once: no idle truncation has had its chance.
	for i := range 2000 {
		id := fmt.Sprintf("key_close_%05d", i)
		if err := store.InsertKey(t.Context(), r, testKey(id, id)); err != nil {
			t.Fatal(err)
		}
	}
	closed = true
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if n := walSize(t, file); n > smallWAL {
		t.Errorf("WAL %d bytes after Close, want at most %d", n, smallWAL)
	}
}
