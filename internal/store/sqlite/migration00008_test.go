package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestMigration00008 seeds each mode's file at schema version 7 (keys not
// deleted and one deleted, an account without keys), lets Open migrate it and
// checks live_keys' backfill; then down to 7 and up again.
func TestMigration00008(t *testing.T) {
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
		if _, err := p.UpTo(ctx, 7); err != nil {
			t.Fatalf("%s: goose up to 7: %v", m, err)
		}
		for _, acct := range []string{storetest.SeedAccount, storetest.EmptyAccount} {
			if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, acct, created); err != nil {
				t.Fatal(err)
			}
		}
		for id, deleted := range storetest.Pre00008Keys {
			_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions,
				metadata, status, managed, deleted, created_at, updated_at) VALUES (?, ?, ?, 'SECRET', ?, '{}', '{}', 'ACTIVE', 0, ?, ?, ?)`,
				id, storetest.SeedAccount, id, []byte(id), deleted, created, created)
			if err != nil {
				t.Fatalf("%s: seed %s: %v", m, id, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		for _, m := range apikey.Modes {
			db, _ := openFile(m)
			for acct, want := range map[string]int{storetest.SeedAccount: storetest.LiveKeys00008, storetest.EmptyAccount: 0} {
				var n int
				if err := db.QueryRowContext(ctx, `SELECT live_keys FROM accounts WHERE id = ?`, acct).Scan(&n); err != nil || n != want {
					t.Errorf("%s, %s: %s live_keys = %d, %v; want %d", when, m, acct, n, err, want)
				}
			}
			_ = db.Close() // only read
		}
	}
	reopen := func() {
		t.Helper()
		s, err := sqlite.Open(ctx, dir, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	reopen()
	check("after 00008")
	for _, m := range apikey.Modes {
		db, p := openFile(m)
		if _, err := p.DownTo(ctx, 7); err != nil {
			t.Fatalf("%s: goose down to 7: %v", m, err)
		}
		_ = db.Close()
	}
	reopen() // up again, as a restart of the new version would
	check("after down and up")
}
