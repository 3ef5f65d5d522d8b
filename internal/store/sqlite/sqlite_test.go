package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := sqlite.Open(t.Context(), t.TempDir(), sqlite.Options{})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		return raw{s}
	})
}

// TestInstances: two Opens of one directory are two instances (two
// processes may share it: nothing stops them), and one that closed is known
// to have ended.
func TestInstances(t *testing.T) {
	storetest.RunInstances(t, func(t *testing.T) func() store.Store {
		dir := t.TempDir()
		return func() store.Store {
			s, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			return s
		}
	}, true)
}

// TestKilledInstanceClaimTakenOver: the restart after kill -9. The killed
// instance's lock file stays behind, unlocked (DieForTest does what the
// kernel does); the next Open takes the killed instance's claim over at once,
// and a live instance's claim is not, though both files are there.
func TestKilledInstanceClaimTakenOver(t *testing.T) {
	dir := t.TempDir()
	open := func() *sqlite.Store {
		s, err := sqlite.Open(t.Context(), dir, sqlite.Options{})
		if err != nil {
			t.Fatalf("sqlite.Open: %v", err)
		}
		return s
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	rec := func(key, id string) *store.IdempotencyRecord {
		return &store.IdempotencyRecord{AccountID: "acct_k", Key: key, ID: id, Fingerprint: []byte("same request"),
			State: store.IdempotencyInProgress, CreatedAt: now, LeaseUntil: now.Add(time.Minute), ExpiresAt: now.Add(24 * time.Hour)}
	}
	claim := func(s *sqlite.Store, r *store.IdempotencyRecord) (cur *store.IdempotencyRecord, ok bool) {
		t.Helper()
		err := s.Repo(apikey.Sandbox).InTx(t.Context(), func(tx store.Tx) error {
			var err error
			cur, ok, err = store.ClaimIdempotency(t.Context(), tx, r, now.Add(time.Second))
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return cur, ok
	}
	killed, live := open(), open()
	defer func() { _ = live.Close() }() // only the test's
	if _, ok := claim(killed, rec("k1", "claim-killed")); !ok {
		t.Fatal("claim refused")
	}
	if _, ok := claim(live, rec("k2", "claim-live")); !ok {
		t.Fatal("claim refused")
	}
	if err := sqlite.DieForTest(killed); err != nil {
		t.Fatal(err)
	}
	lockFile := filepath.Join(dir, "instances", killed.Instance()+".lock")
	if _, err := os.Stat(lockFile); err != nil {
		t.Fatalf("the killed instance's lock file: %v", err)
	}
	restarted := open()
	defer func() { _ = restarted.Close() }() // only the test's
	if cur, ok := claim(restarted, rec("k1", "claim-retry")); !ok {
		t.Fatalf("retry after the kill, within the lease: %+v; want the killed instance's claim taken over", cur)
	}
	if cur, ok := claim(restarted, rec("k2", "claim-retry")); ok || cur.Holder != live.Instance() {
		t.Fatalf("a live instance's claim was taken over: %+v %v", cur, ok)
	}
	if _, err := os.Stat(lockFile); !os.IsNotExist(err) {
		t.Errorf("the killed instance's lock file is still there: %v", err)
	}
}

// raw gives the suite direct SQL on each mode's file (storetest.Raw).
type raw struct{ *sqlite.Store }

func (s raw) Exec(ctx context.Context, m apikey.Mode, query string, args ...any) (int64, error) {
	res, err := s.DB(m).ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (s raw) QueryInt(ctx context.Context, m apikey.Mode, query string, args ...any) (int64, error) {
	var n int64
	err := s.DB(m).QueryRowContext(ctx, query, args...).Scan(&n)
	return n, err
}

// TestMigration00004 seeds each mode's file at schema version 3 with SQL (as
// a server of that version left it), lets Open migrate it, checks what 00004
// did to the old rows, then migrates down to 3 and up again.
func TestMigration00004(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	provider := func(db *sql.DB) *goose.Provider {
		t.Helper()
		p, err := goose.NewProvider(goose.DialectSQLite3, db, os.DirFS("migrations"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	openFile := func(m apikey.Mode) *sql.DB {
		t.Helper()
		db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, sqlite.FileNames[m])+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	permissionsByID := func(db *sql.DB) map[string]string {
		t.Helper()
		rows, err := db.QueryContext(ctx, `SELECT id, permissions FROM api_keys`)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
		got := map[string]string{}
		for rows.Next() {
			var id, p string
			if err := rows.Scan(&id, &p); err != nil {
				t.Fatal(err)
			}
			got[id] = p
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return got
	}
	created := "2025-01-02T03:04:05.000000000Z"
	for _, m := range apikey.Modes {
		db := openFile(m)
		if _, err := provider(db).UpTo(ctx, 3); err != nil {
			t.Fatalf("%s: goose up to 3: %v", m, err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, storetest.SeedAccount, created); err != nil {
			t.Fatal(err)
		}
		for i, k := range storetest.Pre00004Keys {
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
		t.Fatalf("Open on version 3: %v", err)
	}
	storetest.CheckMigrated00004(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, m := range apikey.Modes {
		db := openFile(m)
		if _, err := provider(db).DownTo(ctx, 3); err != nil {
			t.Fatalf("%s: goose down to 3: %v", m, err)
		}
		storetest.CheckPermissionsDown00004(t, permissionsByID(db))
		var n int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name IN ('audit_events', 'api_keys_account_created')
			OR sql LIKE '%key_hint%' OR sql LIKE '%audit_seq%'`).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s: after down, %d objects of 00004 remain (%v)", m, n, err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// And up again, as a restart of the new version would.
	s, err = sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatalf("Open after down: %v", err)
	}
	defer func() { _ = s.Close() }() // only read
	k, err := s.Repo(apikey.Live).GetKey(ctx, "key_managed_secret")
	if err != nil || len(k.Permissions["account:audit"]) != 1 {
		t.Errorf("after up again: %v, %v; want account:audit", k, err)
	}
}
