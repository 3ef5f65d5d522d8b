package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// The group commit's own behaviour, which the conformance suite (run on
// both stores) cannot force: which units share a transaction. A held batch
// does that: its first unit blocks on the writer until the units queued
// behind it are in place, and the writer then takes them all into the same
// transaction.

const acct = "acct_1"

func openStore(t *testing.T) (*sqlite.Store, store.Repository) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // a test that closes it checks Close itself
	r := st.Repo(apikey.Live)
	if err := store.CreateAccount(t.Context(), r, acct, time.Now()); err != nil {
		t.Fatal(err)
	}
	return st, r
}

func testKey(id, name string) *apikey.Key {
	now := time.Now().UTC()
	return &apikey.Key{ID: id, AccountID: acct, Name: name, Type: apikey.TypeSecret, SecretHash: []byte("hash of " + id),
		Status: apikey.StatusActive, CreatedAt: now, UpdatedAt: now}
}

// held is a batch under construction: its first unit holds the writer.
type held struct {
	t       *testing.T
	st      *sqlite.Store
	r       store.Repository
	release chan struct{}
	wg      sync.WaitGroup
	queued  int
	errs    map[string]error
	panics  map[string]any
	mu      sync.Mutex
}

// hold starts the batch's first unit, which inserts key_first, and waits
// until the writer runs it.
func hold(t *testing.T, st *sqlite.Store, r store.Repository) *held {
	t.Helper()
	return holdWith(t, st, r, insertUnit("key_first", "first"))
}

// holdWith is hold with fn as the first unit's work, run once released.
func holdWith(t *testing.T, st *sqlite.Store, r store.Repository, fn func(store.Tx) error) *held {
	t.Helper()
	h := &held{t: t, st: st, r: r, release: make(chan struct{}), errs: map[string]error{}, panics: map[string]any{}}
	running := make(chan struct{})
	h.wg.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.panics["first"] = p
			}
		}()
		err := r.InTx(context.Background(), func(tx store.Tx) error {
			close(running)
			<-h.release
			return fn(tx)
		})
		h.done("first", err)
	})
	<-running
	return h
}

func (h *held) done(name string, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.errs[name] = err
}

// add queues a unit behind the held one (after those added before it).
func (h *held) add(ctx context.Context, name string, fn func(store.Tx) error) {
	h.t.Helper()
	h.wg.Go(func() {
		defer func() {
			if p := recover(); p != nil {
				h.mu.Lock()
				defer h.mu.Unlock()
				h.panics[name] = p
			}
		}()
		h.done(name, h.r.InTx(ctx, fn))
	})
	h.queued++
	for deadline := time.Now().Add(5 * time.Second); sqlite.Queued(h.st, apikey.Live) < h.queued; {
		if time.Now().After(deadline) {
			h.t.Fatalf("unit %s not queued", name)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// run lets the batch go and returns each unit's outcome.
func (h *held) run() map[string]error {
	b0, _ := sqlite.Batches(h.st, apikey.Live)
	close(h.release)
	h.wg.Wait()
	if b1, _ := sqlite.Batches(h.st, apikey.Live); b1 != b0+1 {
		h.t.Errorf("the units ran in %d batches, want one", b1-b0)
	}
	return h.errs
}

func insertUnit(id, name string) func(store.Tx) error {
	return func(tx store.Tx) error { return tx.InsertKey(context.Background(), testKey(id, name)) }
}

func stored(t *testing.T, r store.Repository, id string) bool {
	t.Helper()
	_, err := r.GetKey(t.Context(), id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return err == nil
}

// TestBatchOutcomes: in one transaction, a unit that takes a name an earlier
// unit of the batch took, and one whose fn fails, roll back to their own
// savepoints; the units around them commit.
func TestBatchOutcomes(t *testing.T) {
	st, r := openStore(t)
	h := hold(t, st, r)
	errFn := errors.New("fn failed")
	h.add(t.Context(), "a", insertUnit("key_a", "shared"))
	h.add(t.Context(), "dup", insertUnit("key_dup", "shared"))
	h.add(t.Context(), "fails", func(tx store.Tx) error {
		if err := tx.InsertKey(context.Background(), testKey("key_fails", "fails")); err != nil {
			return err
		}
		return errFn
	})
	h.add(t.Context(), "b", insertUnit("key_b", "b"))
	errs := h.run()
	for name, want := range map[string]error{"first": nil, "a": nil, "dup": store.ErrDuplicateName, "fails": errFn, "b": nil} {
		if !errors.Is(errs[name], want) || want == nil && errs[name] != nil {
			t.Errorf("unit %s: %v, want %v", name, errs[name], want)
		}
	}
	for id, want := range map[string]bool{"key_first": true, "key_a": true, "key_dup": false, "key_fails": false, "key_b": true} {
		if stored(t, r, id) != want {
			t.Errorf("%s stored: %v, want %v", id, !want, want)
		}
	}
}

// TestFirstUnitFails: the first unit of a batch runs without a savepoint
// (nothing of another unit is in the transaction yet); when it fails, after
// writing, by error or by panic, it leaves nothing (its name is free for the
// next unit), and the units behind it, in the same batch, commit as usual:
// one that fails before any succeeded (again without a savepoint), one that
// fails after (with one).
func TestFirstUnitFails(t *testing.T) {
	errFn := errors.New("fn failed")
	for _, panics := range []bool{false, true} {
		t.Run(fmt.Sprintf("panics=%v", panics), func(t *testing.T) {
			st, r := openStore(t)
			h := holdWith(t, st, r, func(tx store.Tx) error {
				if err := tx.InsertKey(context.Background(), testKey("key_first", "shared")); err != nil {
					return err
				}
				if panics {
					panic("boom")
				}
				return errFn
			})
			failing := func(id string) func(store.Tx) error {
				return func(tx store.Tx) error {
					if err := tx.InsertKey(context.Background(), testKey(id, id)); err != nil {
						return err
					}
					return errFn
				}
			}
			h.add(t.Context(), "also_fails", failing("key_also_fails"))
			h.add(t.Context(), "a", insertUnit("key_a", "shared"))
			h.add(t.Context(), "fails_after", failing("key_fails_after"))
			h.add(t.Context(), "b", insertUnit("key_b", "b"))
			errs := h.run()
			if panics {
				if p := h.panics["first"]; p != "boom" {
					t.Errorf("the first unit's caller got panic %v, want boom", p)
				}
			} else if !errors.Is(errs["first"], errFn) {
				t.Errorf("unit first: %v, want %v", errs["first"], errFn)
			}
			for name, want := range map[string]error{"also_fails": errFn, "a": nil, "fails_after": errFn, "b": nil} {
				if !errors.Is(errs[name], want) || want == nil && errs[name] != nil {
					t.Errorf("unit %s: %v, want %v", name, errs[name], want)
				}
			}
			for id, want := range map[string]bool{"key_first": false, "key_also_fails": false, "key_a": true,
				"key_fails_after": false, "key_b": true} {
				if stored(t, r, id) != want {
					t.Errorf("%s stored: %v, want %v", id, !want, want)
				}
			}
		})
	}
}

// TestBatchCommitFails: a COMMIT that fails fails every unit of its batch,
// those whose savepoint was released included, and stores nothing of it; a
// unit that failed on its own keeps its error only if it saw no other
// unit's uncommitted change. The next batch commits.
func TestBatchCommitFails(t *testing.T) {
	st, r := openStore(t)
	var fail atomic.Bool
	if err := sqlite.FailCommits(st, apikey.Live, &fail); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	h := hold(t, st, r)
	h.add(t.Context(), "a", insertUnit("key_a", "shared"))
	h.add(t.Context(), "dup", insertUnit("key_dup", "shared")) // refused on a name that never commits
	h.add(t.Context(), "b", insertUnit("key_b", "b"))
	errs := h.run()
	for _, name := range []string{"first", "a", "dup", "b"} {
		if errs[name] == nil || errors.Is(errs[name], store.ErrDuplicateName) {
			t.Errorf("unit %s: %v, want the COMMIT's error", name, errs[name])
		}
	}
	for _, id := range []string{"key_first", "key_a", "key_dup", "key_b"} {
		if stored(t, r, id) {
			t.Errorf("%s is stored, but its batch failed to commit", id)
		}
	}
	fail.Store(false)
	if err := store.InsertKey(t.Context(), r, testKey("key_a", "shared")); err != nil {
		t.Fatalf("after the failed commit: %v", err)
	}
}

// TestBatchRolledBack: when SQLite rolls the whole transaction back in the
// middle of a batch (SQLITE_FULL, IOERR: simulated), every unit of the batch
// fails with that error, even one whose fn ignored it, and nothing of it is
// stored; units queued after it run in the next transaction.
func TestBatchRolledBack(t *testing.T) {
	errFull := errors.New("database or disk is full (simulated)")
	for _, swallow := range []bool{false, true} {
		t.Run(fmt.Sprintf("fn returns the error: %v", !swallow), func(t *testing.T) {
			st, r := openStore(t)
			h := hold(t, st, r)
			h.add(t.Context(), "a", insertUnit("key_a", "a"))
			h.add(t.Context(), "full", func(tx store.Tx) error {
				if err := tx.InsertKey(context.Background(), testKey("key_full", "full")); err != nil {
					return err
				}
				err := sqlite.AbortTransaction(tx, errFull)
				// Statements after it fail too: run, they would commit on their own.
				if err2 := tx.InsertKey(context.Background(), testKey("key_after", "after")); !errors.Is(err2, errFull) {
					t.Errorf("a statement after the rollback: %v, want the rollback's cause", err2)
				}
				if swallow {
					return nil
				}
				return err
			})
			errs := h.run()
			for _, name := range []string{"first", "a", "full"} {
				if !errors.Is(errs[name], errFull) {
					t.Errorf("unit %s: %v, want %v", name, errs[name], errFull)
				}
			}
			for _, id := range []string{"key_first", "key_a", "key_full", "key_after"} {
				if stored(t, r, id) {
					t.Errorf("%s is stored, but its batch was rolled back", id)
				}
			}
			if err := store.InsertKey(t.Context(), r, testKey("key_a", "a")); err != nil {
				t.Fatalf("after the rollback: %v", err)
			}
		})
	}
}

// TestBatchPanic: a panic in fn reaches its caller with its value, rolls
// back its unit only, and the writer goes on with the batch.
func TestBatchPanic(t *testing.T) {
	st, r := openStore(t)
	h := hold(t, st, r)
	h.add(t.Context(), "a", insertUnit("key_a", "a"))
	h.add(t.Context(), "panics", func(tx store.Tx) error {
		if err := tx.InsertKey(context.Background(), testKey("key_panics", "panics")); err != nil {
			return err
		}
		panic("boom")
	})
	h.add(t.Context(), "b", insertUnit("key_b", "b"))
	errs := h.run()
	if p := h.panics["panics"]; p != "boom" {
		t.Errorf("the panicking unit's caller got panic %v, want boom", p)
	}
	for _, name := range []string{"first", "a", "b"} {
		if errs[name] != nil || h.panics[name] != nil {
			t.Errorf("unit %s: %v, panic %v; want success", name, errs[name], h.panics[name])
		}
	}
	for id, want := range map[string]bool{"key_first": true, "key_a": true, "key_panics": false, "key_b": true} {
		if stored(t, r, id) != want {
			t.Errorf("%s stored: %v, want %v", id, !want, want)
		}
	}
	if err := store.InsertKey(t.Context(), r, testKey("key_c", "c")); err != nil {
		t.Fatalf("after the panic: %v", err)
	}
}

// TestCancelledWhileQueued: a unit whose context ends while it waits behind
// others returns at once and never runs.
func TestCancelledWhileQueued(t *testing.T) {
	st, r := openStore(t)
	h := hold(t, st, r)
	ctx, cancel := context.WithCancel(t.Context())
	var ran atomic.Bool
	h.add(ctx, "cancelled", func(tx store.Tx) error {
		ran.Store(true)
		return tx.InsertKey(context.Background(), testKey("key_cancelled", "cancelled"))
	})
	cancel()
	// It returns while the writer is still held.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		h.mu.Lock()
		err, ok := h.errs["cancelled"]
		h.mu.Unlock()
		if ok {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("cancelled unit: %v, want context.Canceled", err)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the cancelled unit's InTx did not return while the writer was busy")
		}
	}
	close(h.release)
	h.wg.Wait()
	if ran.Load() || stored(t, r, "key_cancelled") {
		t.Error("the cancelled unit ran")
	}
	if h.errs["first"] != nil {
		t.Errorf("first unit: %v", h.errs["first"])
	}
}

// TestCloseDrains: Close lets the queued units run, then refuses new ones.
func TestCloseDrains(t *testing.T) {
	st, r := openStore(t)
	h := hold(t, st, r)
	h.add(t.Context(), "a", insertUnit("key_a", "a"))
	h.add(t.Context(), "b", insertUnit("key_b", "b"))
	closed := make(chan error)
	go func() { closed <- st.Close() }()
	close(h.release)
	h.wg.Wait()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, name := range []string{"first", "a", "b"} {
		if h.errs[name] != nil {
			t.Errorf("unit %s queued before Close: %v", name, h.errs[name])
		}
	}
	if err := store.InsertKey(t.Context(), r, testKey("key_c", "c")); err == nil {
		t.Error("InTx after Close succeeded")
	}
	if err := st.Ping(t.Context()); err == nil {
		t.Error("Ping after Close succeeded")
	}
}

// TestCheckpoints: the writer never checkpoints on COMMIT; the background
// checkpointer does once the WAL has grown.
func TestCheckpoints(t *testing.T) {
	st, r := openStore(t)
	for i := 0; sqlite.Checkpoints(st, apikey.Live) == 0; i++ {
		if i == 5000 {
			t.Fatal("no checkpoint after 5000 commits")
		}
		if err := store.InsertKey(t.Context(), r, testKey(fmt.Sprintf("key_%05d", i), fmt.Sprintf("name %d", i))); err != nil {
			t.Fatal(err)
		}
	}
}
