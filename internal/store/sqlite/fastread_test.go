package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// fastReadStore is a store with one account and one key in sandbox.
func fastReadStore(t *testing.T) (*Store, *Repo, *apikey.Key) {
	t.Helper()
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() }) // the test is over: closing only frees the files
	r := st.repos[apikey.Sandbox]
	now := time.Now().UTC()
	k := &apikey.Key{ID: "key_fast", AccountID: "acct_fast", Name: "fast", Type: apikey.TypeSecret,
		SecretHash: []byte("0123456789abcdef0123456789abcdef"), Status: apikey.StatusActive, CreatedAt: now, UpdatedAt: now}
	err = r.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(ctx, k.AccountID, now); err != nil {
			return err
		}
		return tx.InsertKey(ctx, k)
	})
	if err != nil {
		t.Fatal(err)
	}
	return st, r, k
}

// A read that meets a lock does not fail on the fast readers' busy_timeout
// 0: it runs on the pool path (which waits for a lock under its context).
// A WAL reader is hardly ever kept waiting, so the one fast reader left
// free here reads a copy of the file that another connection holds
// exclusively in rollback-journal mode: every read there is SQLITE_BUSY.
func TestFastReadBusyGoesToThePool(t *testing.T) {
	st, r, k := fastReadStore(t)
	ctx := context.Background()
	locked := filepath.Join(t.TempDir(), "locked.db")
	if _, err := st.DB(apikey.Sandbox).ExecContext(ctx, `VACUUM INTO ?`, locked); err != nil {
		t.Fatal(err)
	}
	holder, err := sql.Open("sqlite", "file:"+locked)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Close() }()
	hc, err := holder.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = hc.Close() }()
	if _, err := hc.ExecContext(ctx, `PRAGMA journal_mode = DELETE`); err != nil {
		t.Fatal(err)
	}
	busyReader, err := openFastReader(ctx, r.rdb.Driver(), "file:"+locked+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = busyReader.close() }()
	if _, err := hc.ExecContext(ctx, `BEGIN EXCLUSIVE`); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = hc.ExecContext(ctx, `ROLLBACK`) }()
	if _, err := busyReader.texts(busyReader.getKey, busyReader.arg1(k.ID), func(string) (bool, error) { return true, nil }); primaryCode(err) != sqlite3lib.SQLITE_BUSY {
		t.Fatalf("the locked copy reads: %v, want SQLITE_BUSY", err)
	}

	var aside []*fastReader
	for range readers {
		fr, err := r.fast.get(ctx)
		if err != nil {
			t.Fatal(err)
		}
		aside = append(aside, fr)
	}
	r.fast.put(busyReader)
	defer func() {
		if fr, err := r.fast.get(ctx); err != nil || fr != busyReader {
			t.Errorf("the busy reader: %v", err)
		}
		for _, fr := range aside {
			r.fast.put(fr)
		}
	}()
	if got, err := r.GetKey(ctx, k.ID); err != nil || got.ID != k.ID {
		t.Errorf("GetKey: %v", err)
	}
	if got, err := r.KeyBySecretHash(ctx, k.SecretHash); err != nil || got.ID != k.ID {
		t.Errorf("KeyBySecretHash: %v", err)
	}
	if ok, err := r.AccountExists(ctx, k.AccountID); err != nil || !ok {
		t.Errorf("AccountExists: %v %v", ok, err)
	}
	if ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: k.AccountID, Limit: 10, Now: time.Now()}); err != nil || len(ks) != 1 {
		t.Errorf("ListKeys: %d keys, %v", len(ks), err)
	}
}

// Waiting for a fast reader ends with the caller's context; a closed store
// answers as its closed pool does.
func TestFastReadWaitEndsWithContext(t *testing.T) {
	st, r, k := fastReadStore(t)
	var taken []*fastReader
	for range readers {
		fr, err := r.fast.get(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		taken = append(taken, fr)
	}
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := r.GetKey(short, k.ID); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("GetKey with every reader busy: %v, want the deadline, unavailable", err)
	}
	for _, fr := range taken {
		r.fast.put(fr)
	}
	if _, err := r.GetKey(context.Background(), k.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Closed: the pool path's answer, as before the fast readers.
	_, err := r.GetKey(context.Background(), k.ID)
	if err == nil || err.Error() != "sql: database is closed" {
		t.Fatalf("GetKey after Close: %v, want database/sql's closed pool", err)
	}
}
