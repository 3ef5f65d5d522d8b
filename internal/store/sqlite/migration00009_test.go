package sqlite_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestMigration00009 seeds schema version 8 with live keys whose names
// already collide under the name key (allowed before 00009): Open must not
// fail, the oldest keeps the plain key, and a new confusable is refused.
func TestMigration00009(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, sqlite.FileNames[apikey.Live])
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 8); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES ('acct_1', '2025-01-01T00:00:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	seed := []struct {
		id, name string
		deleted  bool
	}{{"key_1", storetest.ConfusedName, false}, {"key_2", storetest.Confusables[0], false}, {"key_3", storetest.Confusables[1], true}}
	for i, k := range seed {
		created := "2025-01-0" + string(rune('2'+i)) + "T00:00:00.000000000Z"
		if _, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions,
			metadata, status, managed, deleted, created_at, updated_at) VALUES (?, 'acct_1', ?, 'SECRET', ?, '{}', '{}', 'ACTIVE', 0, ?, ?, ?)`,
			k.id, k.name, []byte(k.id), k.deleted, created, created); err != nil {
			t.Fatal(err)
		}
	}
	_ = db.Close()
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open over colliding names: %v", err)
	}
	defer func() { _ = s.Close() }()
	r := s.Repo(apikey.Live)
	want := namekey.Key(storetest.ConfusedName)
	for id, key := range map[string]string{"key_1": want, "key_2": want + "\n" + "key_2", "key_3": want} {
		k, err := r.GetKey(ctx, id)
		if err != nil || k.NameKey != key {
			t.Errorf("%s: NameKey = %q, %v; want %q", id, k.NameKey, err, key)
		}
	}
	k := &apikey.Key{ID: "key_4", AccountID: "acct_1", Name: storetest.Confusables[2], Type: apikey.TypeSecret,
		SecretHash: []byte("key_4"), Status: apikey.StatusActive}
	if err := store.InsertKey(ctx, r, k); !errors.Is(err, store.ErrDuplicateName) {
		t.Errorf("new confusable after 00009: err = %v, want ErrDuplicateName", err)
	}
}
