package postgres_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

func open(t *testing.T, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	return s
}

// openBothProtocols opens a fresh database twice: with pgx's default
// (extended protocol, binary columns where pgx asks for them) and with the
// simple protocol, which sends every column as text, for tests that hold a
// store's raw-value fast paths to Scan.
func openBothProtocols(t *testing.T) (extended, simple *postgres.Store) {
	t.Helper()
	storetest.PostgresURL(t)
	url := storetest.FreshPostgresDB(t)
	extended = open(t, url)
	t.Cleanup(func() { _ = extended.Close() })
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	simple = open(t, url+sep+"default_query_exec_mode=simple_protocol")
	t.Cleanup(func() { _ = simple.Close() })
	return extended, simple
}

func TestConformance(t *testing.T) {
	storetest.PostgresURL(t) // skip (or fail) once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		return raw{open(t, storetest.FreshPostgresDB(t))}
	})
}

// TestInstances: replicas on one database are instances that cannot tell a
// dead one from a slow one: claims die with their unrenewed leases.
func TestInstances(t *testing.T) {
	storetest.PostgresURL(t)
	storetest.RunInstances(t, func(t *testing.T) func() store.Store {
		url := storetest.FreshPostgresDB(t)
		return func() store.Store { return open(t, url) }
	}, false)
}

// TestConformanceICU runs the suite on databases whose default collation is
// linguistic (ICU "en": "key_a" < "key_B"), where only the stores' explicit
// COLLATE "C" keeps ids in SQLite's bytewise order.
func TestConformanceICU(t *testing.T) {
	storetest.PostgresURL(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return raw{open(t, storetest.FreshPostgresDBICU(t, "en"))}
	})
}

// raw gives the suite direct SQL on each mode's schema (storetest.Raw): the
// statement runs with search_path set to the schema, its ? placeholders
// numbered.
type raw struct{ *postgres.Store }

func (s raw) inSchema(ctx context.Context, m apikey.Mode, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.Pool(), func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, postgres.Schemas[m]); err != nil {
			return err
		}
		return fn(tx)
	})
}

func numbered(query string) string {
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (s raw) Exec(ctx context.Context, m apikey.Mode, query string, args ...any) (int64, error) {
	var n int64
	err := s.inSchema(ctx, m, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, numbered(query), args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}

func (s raw) QueryInt(ctx context.Context, m apikey.Mode, query string, args ...any) (int64, error) {
	var n int64
	err := s.inSchema(ctx, m, func(tx pgx.Tx) error { return tx.QueryRow(ctx, numbered(query), args...).Scan(&n) })
	return n, err
}

// TestSchemas checks that each mode has its own schema and its own goose
// version table, and that opening again (a restart) migrates nothing twice.
func TestSchemas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	s := open(t, url)
	defer func() { _ = s.Close() }() // only read
	ctx := t.Context()
	for _, m := range apikey.Modes {
		schema := postgres.Schemas[m]
		for _, table := range []string{"accounts", "api_keys", "audit_events", "goose_db_version"} {
			var ok bool
			err := s.Pool().QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_tables WHERE schemaname = $1 AND tablename = $2)`,
				schema, table).Scan(&ok)
			if err != nil || !ok {
				t.Errorf("table %s.%s exists = %v, %v; want true", schema, table, ok, err)
			}
		}
	}
	var stray int
	if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`).Scan(&stray); err != nil || stray != 0 {
		t.Errorf("tables in public = %d, %v; want 0", stray, err)
	}
	files, err := filepath.Glob("migrations/*.sql")
	if err != nil || len(files) == 0 {
		t.Fatalf("migration files: %v, %v", files, err)
	}
	s2 := open(t, url)
	defer func() { _ = s2.Close() }() // only read
	for _, m := range apikey.Modes {
		var n, distinct int
		err := s2.Pool().QueryRow(ctx, `SELECT count(*), count(DISTINCT version_id) FROM `+
			postgres.Schemas[m]+`.goose_db_version WHERE version_id > 0`).Scan(&n, &distinct)
		if err != nil || n != len(files) || distinct != n {
			t.Errorf("%s: applied migrations = %d (%d distinct), %v; want %d", m, n, distinct, err, len(files))
		}
	}
}

// TestConcurrentOpen starts several "replicas" on one empty database at once:
// the advisory lock must let them all migrate without errors.
func TestConcurrentOpen(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	const n = 6
	var wg sync.WaitGroup
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = postgres.Open(context.Background(), url) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		if err := stores[i].Ping(t.Context()); err != nil {
			t.Errorf("Ping #%d: %v", i, err)
		}
		if err := stores[i].Close(); err != nil {
			t.Errorf("Close #%d: %v", i, err)
		}
	}
}

// TestOpenBadURL fails cleanly.
func TestOpenBadURL(t *testing.T) {
	if _, err := postgres.Open(t.Context(), "postgres://127.0.0.1:1/nothing?connect_timeout=2"); err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
}

// TestMigration00004 seeds each mode's schema at version 3 with SQL (as a
// server of that version left it), lets Open migrate it, checks what 00004
// did to the old rows, then migrates down to 3 and up again.
func TestMigration00004(t *testing.T) {
	ctx := t.Context()
	url := storetest.FreshPostgresDB(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	// goose in a schema, as Open runs it.
	inSchema := func(m apikey.Mode, fn func(*sql.DB, *goose.Provider)) {
		t.Helper()
		schema := postgres.Schemas[m]
		scfg := cfg.Copy()
		scfg.RuntimeParams["search_path"] = schema
		db := stdlib.OpenDB(*scfg)
		defer func() { _ = db.Close() }() // its statements have finished by then
		p, err := goose.NewProvider(goose.DialectPostgres, db, os.DirFS("migrations"),
			goose.WithTableName(schema+"."+goose.DefaultTablename))
		if err != nil {
			t.Fatal(err)
		}
		fn(db, p)
	}
	created := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, m := range apikey.Modes {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		_, err = conn.Exec(ctx, `CREATE SCHEMA `+postgres.Schemas[m])
		if cerr := conn.Close(ctx); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		inSchema(m, func(db *sql.DB, p *goose.Provider) {
			if _, err := p.UpTo(ctx, 3); err != nil {
				t.Fatalf("%s: goose up to 3: %v", m, err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES ($1, $2)`, storetest.SeedAccount, created); err != nil {
				t.Fatal(err)
			}
			for i, k := range storetest.Pre00004Keys {
				_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions,
					metadata, status, managed, deleted, created_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6::jsonb, '{}', 'ACTIVE', $7, FALSE, $8, $8)`,
					k.ID, storetest.SeedAccount, k.ID, k.Type, []byte{byte(i), 1, 2, 3}, k.Permissions, k.Managed, created)
				if err != nil {
					t.Fatalf("%s: seed %s: %v", m, k.ID, err)
				}
			}
		})
	}
	s := open(t, url)
	storetest.CheckMigrated00004(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, m := range apikey.Modes {
		inSchema(m, func(db *sql.DB, p *goose.Provider) {
			if _, err := p.DownTo(ctx, 3); err != nil {
				t.Fatalf("%s: goose down to 3: %v", m, err)
			}
			got := map[string]string{}
			rows, err := db.QueryContext(ctx, `SELECT id, permissions::text FROM api_keys`)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
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
			storetest.CheckPermissionsDown00004(t, got)
			var n int
			err = db.QueryRowContext(ctx, `SELECT
				(SELECT count(*) FROM pg_tables WHERE schemaname = $1 AND tablename = 'audit_events') +
				(SELECT count(*) FROM pg_indexes WHERE schemaname = $1 AND indexname = 'api_keys_account_created') +
				(SELECT count(*) FROM information_schema.columns WHERE table_schema = $1
					AND column_name IN ('key_hint', 'audit_seq', 'audit_head'))`, postgres.Schemas[m]).Scan(&n)
			if err != nil || n != 0 {
				t.Errorf("%s: after down, %d objects of 00004 remain (%v)", m, n, err)
			}
		})
	}
	// Up again, as a restart of the new version would.
	s = open(t, url)
	defer func() { _ = s.Close() }() // only read
	k, err := s.Repo(apikey.Live).GetKey(ctx, "key_managed_secret")
	if err != nil || len(k.Permissions["account:audit"]) != 1 {
		t.Errorf("after up again: %v, %v; want account:audit", k, err)
	}
}
