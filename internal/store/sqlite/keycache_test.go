package sqlite_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// The writer's key cache (keycache.go) answers Tx.Key with what the
// statement would read: these are the ways a cached key could go stale.

func cacheStore(t *testing.T) (*sqlite.Store, store.Repository, *apikey.Key) {
	t.Helper()
	st, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // the test is over
	repo := st.Repo(apikey.Sandbox)
	now := time.Now().UTC()
	if err := store.CreateAccount(t.Context(), repo, "acct_c", now); err != nil {
		t.Fatal(err)
	}
	k := &apikey.Key{ID: "key_cached", AccountID: "acct_c", Name: "cached", Type: apikey.TypeSecret,
		SecretHash: []byte("hash-cached"), Status: apikey.StatusActive,
		Permissions: map[string][]string{"payment": {"read"}}, Metadata: map[string]string{"team": "a"},
		CreatedAt: now, UpdatedAt: now}
	if err := store.InsertKey(t.Context(), repo, k); err != nil {
		t.Fatal(err)
	}
	return st, repo, k
}

// txKey reads id in a unit of its own.
func txKey(t *testing.T, repo store.Repository, id string) *apikey.Key {
	t.Helper()
	var k *apikey.Key
	err := repo.InTx(t.Context(), func(tx store.Tx) error {
		var err error
		k, err = tx.Key(t.Context(), id)
		return err
	})
	if err != nil {
		t.Fatalf("read %s: %v", id, err)
	}
	return k
}

func TestKeyCacheSeesOtherConnections(t *testing.T) {
	st, repo, k := cacheStore(t)
	txKey(t, repo, k.ID) // cached now
	if _, err := st.DB(apikey.Sandbox).ExecContext(t.Context(), `UPDATE api_keys SET status = 'INACTIVE' WHERE id = ?`, k.ID); err != nil {
		t.Fatal(err)
	}
	if got := txKey(t, repo, k.ID).Status; got != apikey.StatusInactive {
		t.Fatalf("after a write through another connection: status %q, want %q", got, apikey.StatusInactive)
	}
}

func TestKeyCacheRolledBackUnit(t *testing.T) {
	_, repo, k := cacheStore(t)
	txKey(t, repo, k.ID)
	errUndo := errors.New("undo")
	err := repo.InTx(t.Context(), func(tx store.Tx) error {
		got, err := tx.Key(t.Context(), k.ID)
		if err != nil {
			return err
		}
		got.Status = apikey.StatusInactive
		if err := tx.UpdateKey(t.Context(), got); err != nil {
			return err
		}
		if again, err := tx.Key(t.Context(), k.ID); err != nil || again.Status != apikey.StatusInactive {
			t.Errorf("inside the unit after its update: %+v, %v; want it INACTIVE", again, err)
		}
		return errUndo
	})
	if !errors.Is(err, errUndo) {
		t.Fatalf("InTx = %v, want %v", err, errUndo)
	}
	if got := txKey(t, repo, k.ID).Status; got != apikey.StatusActive {
		t.Fatalf("after the unit rolled back: status %q, want %q", got, apikey.StatusActive)
	}
}

func TestKeyCacheFailedBatch(t *testing.T) {
	st, repo, k := cacheStore(t)
	txKey(t, repo, k.ID)
	var fail atomic.Bool
	if err := sqlite.FailCommits(st, apikey.Sandbox, &fail); err != nil {
		t.Fatal(err)
	}
	fail.Store(true)
	_, err := store.UpdateKey(t.Context(), repo, k.ID, func(k *apikey.Key) error {
		k.Status = apikey.StatusInactive
		return nil
	})
	fail.Store(false)
	if err == nil {
		t.Fatal("update committed though its COMMIT failed")
	}
	if got := txKey(t, repo, k.ID).Status; got != apikey.StatusActive {
		t.Fatalf("after the batch failed: status %q, want %q", got, apikey.StatusActive)
	}
	// And a committed change is read back.
	if _, err := store.UpdateKey(t.Context(), repo, k.ID, func(k *apikey.Key) error {
		k.Status = apikey.StatusInactive
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if got := txKey(t, repo, k.ID).Status; got != apikey.StatusInactive {
		t.Fatalf("after the update: status %q, want %q", got, apikey.StatusInactive)
	}
}

// TestKeyCacheCopies: what a caller does to the key it read is not what the
// next reader gets.
func TestKeyCacheCopies(t *testing.T) {
	_, repo, k := cacheStore(t)
	for range 2 {
		got := txKey(t, repo, k.ID)
		if len(got.Permissions["payment"]) != 1 || got.Metadata["team"] != "a" || string(got.SecretHash) != "hash-cached" {
			t.Fatalf("read %+v, want the key as inserted", got)
		}
		got.Permissions["payment"][0] = "write"
		got.Permissions["refund"] = []string{"read"}
		got.Metadata["team"] = "b"
		got.SecretHash[0] = 'X'
		got.Status = apikey.StatusInactive
	}
	if got := txKey(t, repo, k.ID); got.Status != apikey.StatusActive {
		t.Fatalf("read %+v, want the key as inserted", got)
	}
}

// TestKeyCacheRecordUsage: a recorded use is read back.
func TestKeyCacheRecordUsage(t *testing.T) {
	_, repo, k := cacheStore(t)
	txKey(t, repo, k.ID)
	at := time.Now().UTC().Truncate(time.Microsecond)
	if err := repo.RecordUsage(t.Context(), []store.Usage{{KeyID: k.ID, At: at, IP: "192.0.2.1"}}); err != nil {
		t.Fatal(err)
	}
	if got := txKey(t, repo, k.ID); got.LastUsedAt == nil || !got.LastUsedAt.Equal(at) {
		t.Fatalf("last used %v, want %v", got.LastUsedAt, at)
	}
}

// TestKeyCacheDeletedAccount: a key deleted with its account is not found.
func TestKeyCacheDeletedAccount(t *testing.T) {
	_, repo, k := cacheStore(t)
	txKey(t, repo, k.ID)
	err := repo.InTx(t.Context(), func(tx store.Tx) error { return tx.DeleteAccount(t.Context(), k.AccountID) })
	if err != nil {
		t.Fatal(err)
	}
	err = repo.InTx(t.Context(), func(tx store.Tx) error {
		_, err := tx.Key(t.Context(), k.ID)
		return err
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("read after the account was deleted: %v, want %v", err, store.ErrNotFound)
	}
}

// ReleaseExpiredName is run lazily (sqlite.go): a release that no insert of
// its name follows is still made, by the end of the unit or before the
// unit's next statement.
func TestReleaseWithoutInsert(t *testing.T) {
	ctx := context.Background()
	_, repo, k := cacheStore(t)
	past := time.Now().UTC().Add(-time.Hour)
	if _, err := store.UpdateKey(ctx, repo, k.ID, func(k *apikey.Key) error { k.ExpiresAt = &past; return nil }); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	other := &apikey.Key{ID: "key_other", AccountID: "acct_c", Name: "other", Type: apikey.TypeSecret,
		SecretHash: []byte("hash-other"), Status: apikey.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := store.InsertKey(ctx, repo, other); err != nil {
		t.Fatal(err)
	}
	// Released, then a rename onto the name (UpdateKey runs the release first).
	_, err := store.UpdateKey(ctx, repo, other.ID, func(o *apikey.Key) error { o.Name = k.Name; return nil })
	if !errors.Is(err, store.ErrDuplicateName) {
		t.Fatalf("rename onto an expired key's unreleased name: %v, want %v", err, store.ErrDuplicateName)
	}
	err = repo.InTx(ctx, func(tx store.Tx) error {
		if err := tx.ReleaseExpiredName(ctx, "acct_c", k.Name, now); err != nil {
			return err
		}
		o, err := tx.Key(ctx, other.ID)
		if err != nil {
			return err
		}
		o.Name = k.Name
		return tx.UpdateKey(ctx, o)
	})
	if err != nil {
		t.Fatalf("release, then rename onto the name: %v", err)
	}
	// Released in a unit of its own: the next insert needs no release.
	third := &apikey.Key{ID: "key_third", AccountID: "acct_c", Name: "third", Type: apikey.TypeSecret,
		SecretHash: []byte("hash-third"), Status: apikey.StatusActive, ExpiresAt: &past, CreatedAt: now, UpdatedAt: now}
	if err := store.InsertKey(ctx, repo, third); err != nil {
		t.Fatal(err)
	}
	err = repo.InTx(ctx, func(tx store.Tx) error { return tx.ReleaseExpiredName(ctx, "acct_c", "third", now) })
	if err != nil {
		t.Fatal(err)
	}
	fourth := &apikey.Key{ID: "key_fourth", AccountID: "acct_c", Name: "third", Type: apikey.TypeSecret,
		SecretHash: []byte("hash-fourth"), Status: apikey.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := store.InsertKey(ctx, repo, fourth); err != nil {
		t.Fatalf("insert onto a name released by an earlier unit: %v", err)
	}
}
