package sqlite_test

import (
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// TestMigration00015 migrates a version-14 file holding keys up (the two
// indexes of an account's keys become one; every row stays), down (the two
// come back as they were) and up again.
func TestMigration00015(t *testing.T) {
	ctx := t.Context()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), sqlite.FileNames[apikey.Sandbox])+"?_pragma=foreign_keys(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = db.Close() }()
	p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.UpTo(ctx, 14); err != nil {
		t.Fatal(err)
	}
	indexes := func() string {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'api_keys'
			AND name IN ('api_keys_account_created', 'api_keys_active', 'api_keys_account_keys') ORDER BY name`)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return strings.Join(out, "\n")
	}
	before := indexes()
	if !strings.Contains(before, "api_keys_account_created") || !strings.Contains(before, "api_keys_active") {
		t.Fatalf("at version 14: %s", before)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES ('acct_1', '2026-01-01T00:00:00.000000000Z')`); err != nil {
		t.Fatal(err)
	}
	for i, exp := range []any{nil, "2026-02-01T00:00:00.000000000Z", "2027-01-01T00:00:00.000000000Z"} {
		_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, name_key, type, secret_hash, permissions,
			metadata, status, managed, deleted, expires_at, created_at, updated_at)
			VALUES (?, 'acct_1', ?, ?, 'SECRET', ?, '{}', '{}', 'ACTIVE', 0, ?, ?, '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')`,
			"key_"+string(rune('a'+i)), "n"+string(rune('a'+i)), "n"+string(rune('a'+i)), []byte{byte(i)}, i%2, exp)
		if err != nil {
			t.Fatal(err)
		}
	}
	for i, step := range []func() error{
		func() error { _, err := p.UpTo(ctx, 15); return err },
		func() error { _, err := p.DownTo(ctx, 14); return err },
		func() error { _, err := p.UpTo(ctx, 15); return err },
	} {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		got := indexes()
		if i%2 == 1 {
			if got != before {
				t.Fatalf("step %d: after down\n%s\nwant\n%s", i, got, before)
			}
		} else if !strings.Contains(got, "api_keys_account_keys") || strings.Contains(got, "api_keys_account_created") || strings.Contains(got, "api_keys_active") {
			t.Fatalf("step %d: after up: %s", i, got)
		}
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE account_id = 'acct_1'`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("step %d: %d keys, %v", i, n, err)
		}
		var check string
		if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
			t.Fatalf("step %d: integrity %q, %v", i, check, err)
		}
	}
}
