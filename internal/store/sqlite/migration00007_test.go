package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// TestMigration00007 migrates a version-6 file up (the idempotency table
// appears, empty), down (it goes; nothing else does) and up again.
func TestMigration00007(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileNames[apikey.Sandbox])+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	tables := func() int {
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'idempotency_records'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if _, err := p.UpTo(ctx, 6); err != nil {
		t.Fatal(err)
	}
	if tables() != 0 {
		t.Fatal("the table exists at version 6")
	}
	for i, step := range []func() error{
		func() error { _, err := p.UpTo(ctx, 7); return err },
		func() error { _, err := p.DownTo(ctx, 6); return err },
		func() error { _, err := p.UpTo(ctx, 7); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if want := 1 - i%2; tables() != want {
			t.Fatalf("step %d: %d tables, want %d", i, tables(), want)
		}
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM idempotency_records`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("rows %d, %v", n, err)
	}
}
