package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestMigration00006 seeds each mode's file at schema version 5 with SQL (as
// a server of that version left it), lets Open migrate it, checks that the
// managed secret keys gained account:api:key:verify (once) and nothing else
// changed, then migrates down to 5 and up again.
func TestMigration00006(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	openFile := func(m apikey.Mode) (*sql.DB, *goose.Provider) {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileNames[m])+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatal(err)
		}
		p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
		if err != nil {
			t.Fatal(err)
		}
		return db, p
	}
	created := "2025-01-02T03:04:05.000000000Z"
	for _, m := range apikey.Modes {
		db, p := openFile(m)
		if _, err := p.UpTo(ctx, 5); err != nil {
			t.Fatalf("%s: goose up to 5: %v", m, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, storetest.SeedAccount, created); err != nil {
			t.Fatal(err)
		}
		for i, k := range storetest.Pre00006Keys {
			_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions,
				metadata, status, managed, deleted, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, '{}', 'ACTIVE', ?, 0, ?, ?)`,
				k.ID, storetest.SeedAccount, k.ID, k.Type, []byte{byte(i), 1, 2, 3}, k.Permissions, k.Managed, created, created)
			if err != nil {
				t.Fatalf("%s: seed %s: %v", m, k.ID, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	s, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open on version 5: %v", err)
	}
	storetest.CheckMigrated00006(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, m := range apikey.Modes {
		db, p := openFile(m)
		if _, err := p.DownTo(ctx, 5); err != nil {
			t.Fatalf("%s: goose down to 5: %v", m, err)
		}
		got := map[string]string{}
		for _, k := range storetest.Pre00006Keys {
			var perms string
			if err := db.QueryRowContext(ctx, `SELECT permissions FROM api_keys WHERE id = ?`, k.ID).Scan(&perms); err != nil {
				t.Fatal(err)
			}
			got[k.ID] = perms
		}
		storetest.CheckPermissionsDown00006(t, got)
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Up again, as a restart of the new version would.
	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open after down: %v", err)
	}
	defer func() { _ = s.Close() }() // only read
	k, err := s.Repo(apikey.Live).GetKey(ctx, "key_managed_secret")
	if err != nil || !slices.Contains(k.Permissions["account:api:key"], "verify") {
		t.Errorf("after up again: %v, %v; want account:api:key verify", k, err)
	}
}
