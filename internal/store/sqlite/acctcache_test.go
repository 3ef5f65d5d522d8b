package sqlite_test

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// The writer's account cache (acctcache.go) follows the transaction: what
// a unit that does not commit did to an account is not what the next one
// sees.

var evtSeq atomic.Int64

// createUnit is create's unit: lock, cap, insert, append; fail makes it
// return an error at the end, after its writes.
func createUnit(t *testing.T, repo store.Repository, account string, limit int, fail error) error {
	t.Helper()
	n := evtSeq.Add(1)
	now := time.Now().UTC()
	return repo.InTx(t.Context(), func(tx store.Tx) error {
		if err := tx.LockAccount(t.Context(), account); err != nil {
			return err
		}
		reached, err := tx.KeyCapReached(t.Context(), account, now, limit)
		if err != nil {
			return err
		}
		if reached {
			return errCap
		}
		k := &apikey.Key{ID: fmt.Sprintf("key_ac%d", n), AccountID: account, Name: fmt.Sprintf("ac %d", n),
			Type: apikey.TypeSecret, SecretHash: fmt.Appendf(nil, "hash-ac%d", n), Status: apikey.StatusActive,
			CreatedAt: now, UpdatedAt: now}
		if err := tx.InsertKey(t.Context(), k); err != nil {
			return err
		}
		err = tx.AppendAuditEvent(t.Context(), &audit.Event{ID: fmt.Sprintf("evt_ac%d", n), AccountID: account,
			Action: audit.Create, KeyID: k.ID, Actor: apikey.Actor{Kind: apikey.ActorPlatform, ID: "test"}, CreatedAt: now})
		if err != nil {
			return err
		}
		return fail
	})
}

var errCap = errors.New("cap reached")

func checkChain(t *testing.T, repo store.Repository, account string, want int) {
	t.Helper()
	events, err := repo.AuditChain(t.Context(), account)
	if err != nil {
		t.Fatal(err)
	}
	heads, err := repo.AuditAccounts(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range heads {
		if h.AccountID == account {
			if err := audit.Verify(account, apikey.Sandbox, events, h.Seq, h.Hash); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
}

func TestAccountCacheRolledBackUnit(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over
	repo := st.Repo(apikey.Sandbox)
	if err := store.CreateAccount(t.Context(), repo, "acct_a", time.Now()); err != nil {
		t.Fatal(err)
	}
	errUndo := errors.New("undo")
	if err := createUnit(t, repo, "acct_a", 2, nil); err != nil {
		t.Fatal(err)
	}
	for range 3 { // each undone: the count and the head stay as committed
		if err := createUnit(t, repo, "acct_a", 2, errUndo); !errors.Is(err, errUndo) {
			t.Fatalf("undone create: %v", err)
		}
	}
	if err := createUnit(t, repo, "acct_a", 2, nil); err != nil {
		t.Fatalf("second create under a cap of 2: %v", err)
	}
	if err := createUnit(t, repo, "acct_a", 2, nil); !errors.Is(err, errCap) {
		t.Fatalf("third create under a cap of 2: %v, want the cap", err)
	}
	checkChain(t, repo, "acct_a", 2)
}

func TestAccountCacheFailedBatch(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over
	repo := st.Repo(apikey.Sandbox)
	if err := store.CreateAccount(t.Context(), repo, "acct_b", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_b", 2, nil); err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	if err := sqlite.FailCommits(st, apikey.Sandbox, &fail); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	if err := createUnit(t, repo, "acct_b", 2, nil); err == nil {
		t.Fatal("create committed though its COMMIT failed")
	}
	fail.Store(false)
	if err := createUnit(t, repo, "acct_b", 2, nil); err != nil {
		t.Fatalf("second create under a cap of 2: %v", err)
	}
	if err := createUnit(t, repo, "acct_b", 2, nil); !errors.Is(err, errCap) {
		t.Fatalf("third create under a cap of 2: %v, want the cap", err)
	}
	checkChain(t, repo, "acct_b", 2)
}

// TestAccountCacheOtherConnection: a key undeleted by hand (through
// another connection) counts toward the cap at once.
func TestAccountCacheOtherConnection(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over
	repo := st.Repo(apikey.Sandbox)
	if err := store.CreateAccount(t.Context(), repo, "acct_o", time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := createUnit(t, repo, "acct_o", 3, nil); err != nil {
			t.Fatal(err)
		}
	}
	var first string
	if err := st.DB(apikey.Sandbox).QueryRowContext(t.Context(),
		`SELECT min(id) FROM api_keys WHERE account_id = 'acct_o'`).Scan(&first); err != nil {
		t.Fatal(err)
	}
	if _, err := store.UpdateKey(t.Context(), repo, first, func(k *apikey.Key) error { k.Deleted = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_o", 3, nil); err != nil { // 2 live now: the account is cached so
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_o", 3, errors.New("undo")); err == nil { // read from the cache
		t.Fatal("undone create committed")
		t.Fatal(err)
	}
	if _, err := st.DB(apikey.Sandbox).ExecContext(t.Context(),
		`UPDATE api_keys SET deleted = 0 WHERE id = ?`, first); err != nil {
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_o", 3, nil); !errors.Is(err, errCap) {
		t.Fatalf("create after a key was undeleted by hand, 3 live under a cap of 3: %v, want the cap", err)
	}
	checkChain(t, repo, "acct_o", 3)
}

// TestAccountCacheKeyDeleted: a unit that deletes a key it read (as the
// delete operation does) frees a place under the cap; one rolled back does
// not.
func TestAccountCacheKeyDeleted(t *testing.T) {
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over
	repo := st.Repo(apikey.Sandbox)
	if err := store.CreateAccount(t.Context(), repo, "acct_d", time.Now()); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := createUnit(t, repo, "acct_d", 2, nil); err != nil {
			t.Fatal(err)
		}
	}
	ids := make([]string, 2)
	if err := st.DB(apikey.Sandbox).QueryRowContext(t.Context(),
		`SELECT min(id), max(id) FROM api_keys WHERE account_id = 'acct_d'`).Scan(&ids[0], &ids[1]); err != nil {
		t.Fatal(err)
	}
	del := func(id string, fail error) error {
		return repo.InTx(t.Context(), func(tx store.Tx) error {
			k, err := tx.Key(t.Context(), id)
			if err != nil {
				return err
			}
			if err := tx.LockAccount(t.Context(), k.AccountID); err != nil {
				return err
			}
			k.Deleted = true
			if err := tx.UpdateKey(t.Context(), k); err != nil {
				return err
			}
			return fail
		})
	}
	if err := del(ids[0], errors.New("undo")); err == nil {
		t.Fatal("undone delete committed")
	}
	if err := createUnit(t, repo, "acct_d", 2, nil); !errors.Is(err, errCap) {
		t.Fatalf("create after an undone delete, 2 live under a cap of 2: %v, want the cap", err)
	}
	if err := del(ids[0], nil); err != nil {
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_d", 2, nil); err != nil {
		t.Fatalf("create after a delete, 1 live under a cap of 2: %v", err)
	}
	if err := createUnit(t, repo, "acct_d", 2, nil); !errors.Is(err, errCap) {
		t.Fatalf("create with 2 live under a cap of 2: %v, want the cap", err)
	}
	// Undeleted (no operation does; the store allows it): counted in again.
	err = repo.InTx(t.Context(), func(tx store.Tx) error {
		k, err := tx.Key(t.Context(), ids[0])
		if err != nil {
			return err
		}
		if err := tx.LockAccount(t.Context(), k.AccountID); err != nil {
			return err
		}
		k.Deleted = false
		return tx.UpdateKey(t.Context(), k)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := createUnit(t, repo, "acct_d", 3, nil); !errors.Is(err, errCap) {
		t.Fatalf("create with 3 live under a cap of 3: %v, want the cap", err)
	}
	var live int
	if err := st.DB(apikey.Sandbox).QueryRowContext(t.Context(), `SELECT live_keys FROM accounts WHERE id = 'acct_d'`).Scan(&live); err != nil || live != 3 {
		t.Fatalf("live_keys = %d, %v; want 3", live, err)
	}
}
