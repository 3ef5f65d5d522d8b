package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

// testUnitsConcurrentOutcomes runs many units at once, as the service does
// under load, where a store may group them into one transaction: units that
// succeed, units whose insert hits a name already taken (by a key committed
// earlier, or by another of these units), and units whose fn fails after
// writing. Each caller gets its own outcome, exactly the successful units'
// keys and events are stored, and the audit chain they extend verifies.
func testUnitsConcurrentOutcomes(t *testing.T, s store.Store) {
	const n = 48
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustInsert(t, r, newKey("key_taken", "acct_1", "taken"))
	errFn := errors.New("the unit's own failure")

	type kind int
	const (
		succeeds  kind = iota
		takenName      // the name of a committed key: ErrDuplicateName
		fnFails        // fn returns errFn after inserting and appending
		racesName      // all of these want one new name: one wins
	)
	kinds := make([]kind, n)
	for i := range kinds {
		kinds[i] = kind(i % 4)
	}
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			name := fmt.Sprintf("name %02d", i)
			switch kinds[i] {
			case takenName:
				name = "taken"
			case racesName:
				name = "raced"
			}
			k := newKey(fmt.Sprintf("key_%02d", i), "acct_1", name)
			e := newEvent(fmt.Sprintf("evt_%02d", i), "acct_1", k.ID, audit.Create, time.Duration(i)*time.Millisecond, nil)
			<-start
			errs[i] = r.InTx(ctx, func(tx store.Tx) error {
				if err := tx.LockAccount(ctx, "acct_1"); err != nil {
					return err
				}
				if err := tx.InsertKey(ctx, k); err != nil {
					return err
				}
				if err := tx.AppendAuditEvent(ctx, e); err != nil {
					return err
				}
				if kinds[i] == fnFails {
					return errFn
				}
				return nil
			})
		})
	}
	close(start)
	wg.Wait()

	stored := map[string]bool{"key_taken": true}
	raceWinner := -1
	for i, err := range errs {
		id := fmt.Sprintf("key_%02d", i)
		switch kinds[i] {
		case succeeds:
			if err != nil {
				t.Errorf("unit %d: %v, want success", i, err)
			}
			stored[id] = true
		case takenName:
			wantErr(t, fmt.Sprintf("unit %d (taken name)", i), err, store.ErrDuplicateName)
		case fnFails:
			if err != errFn { //nolint:errorlint // the contract is fn's error itself, not one wrapping it
				t.Errorf("unit %d: err = %v, want fn's own", i, err)
			}
		case racesName:
			switch {
			case err == nil && raceWinner >= 0:
				t.Errorf("units %d and %d both took one name", raceWinner, i)
			case err == nil:
				raceWinner = i
				stored[id] = true
			default:
				wantErr(t, fmt.Sprintf("unit %d (raced name)", i), err, store.ErrDuplicateName)
			}
		}
	}
	if raceWinner < 0 {
		t.Error("no unit took the raced name")
	}
	ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_1", Now: at(0), Limit: 2 * n})
	if err != nil {
		t.Fatalf("ListKeys: %v", err)
	}
	for _, k := range ks {
		if !stored[k.ID] {
			t.Errorf("key %s (%q) is stored, but its unit failed", k.ID, k.Name)
		}
		delete(stored, k.ID)
	}
	for id := range stored {
		t.Errorf("key %s is not stored, but its unit succeeded", id)
	}
	h, _ := head(t, r, "acct_1")
	if want := int64(len(ks) - 1); h.Seq != want {
		t.Errorf("head seq = %d, want %d (one event per stored key)", h.Seq, want)
	}
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// testUnitCancelled: a unit whose context is cancelled before it starts,
// while it runs, or after its fn succeeded but before InTx returned writes
// nothing and InTx reports the cancellation; the store goes on working.
func testUnitCancelled(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	insert := func(id string) func(ctx context.Context, tx store.Tx) error {
		return func(ctx context.Context, tx store.Tx) error {
			return tx.InsertKey(ctx, newKey(id, "acct_1", id))
		}
	}
	for _, tc := range []struct {
		name string
		fn   func(ctx context.Context, cancel context.CancelFunc, tx store.Tx) error
		// cancelled: cancel before InTx is called
		cancelled bool
	}{
		{"before", func(ctx context.Context, _ context.CancelFunc, tx store.Tx) error {
			return insert("key_before")(ctx, tx)
		}, true},
		{"during", func(ctx context.Context, cancel context.CancelFunc, tx store.Tx) error {
			if err := insert("key_during")(ctx, tx); err != nil {
				return err
			}
			cancel()
			if err := tx.LockAccount(ctx, "acct_1"); err == nil {
				return errors.New("a statement ran after the unit's context was cancelled")
			}
			return ctx.Err()
		}, false},
		{"after fn", func(ctx context.Context, cancel context.CancelFunc, tx store.Tx) error {
			if err := insert("key_after fn")(ctx, tx); err != nil {
				return err
			}
			cancel()
			return nil
		}, false},
	} {
		ctx, cancel := context.WithCancel(t.Context())
		if tc.cancelled {
			cancel()
		}
		err := r.InTx(ctx, func(tx store.Tx) error { return tc.fn(ctx, cancel, tx) })
		cancel()
		wantErr(t, tc.name+": InTx", err, context.Canceled)
		id := "key_" + tc.name
		if _, err := r.GetKey(t.Context(), id); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("%s: the cancelled unit's key was stored (GetKey err %v)", tc.name, err)
		}
	}
	mustInsert(t, r, newKey("key_later", "acct_1", "later"))
	mustGet(t, r, "key_later")
}
