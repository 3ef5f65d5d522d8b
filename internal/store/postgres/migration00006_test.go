package postgres_test

import (
	"database/sql"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestMigration00006 seeds each mode's schema at version 5 with SQL (as a
// server of that version left it), lets Open migrate it, checks that the
// managed secret keys gained account:api:key:verify (once) and nothing else
// changed, then migrates down to 5 and up again.
func TestMigration00006(t *testing.T) {
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
			if _, err := p.UpTo(ctx, 5); err != nil {
				t.Fatalf("%s: goose up to 5: %v", m, err)
			}
			if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES ($1, $2)`, storetest.SeedAccount, created); err != nil {
				t.Fatal(err)
			}
			for i, k := range storetest.Pre00006Keys {
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
	storetest.CheckMigrated00006(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for _, m := range apikey.Modes {
		inSchema(m, func(db *sql.DB, p *goose.Provider) {
			if _, err := p.DownTo(ctx, 5); err != nil {
				t.Fatalf("%s: goose down to 5: %v", m, err)
			}
			got := map[string]string{}
			for _, k := range storetest.Pre00006Keys {
				var perms string
				if err := db.QueryRowContext(ctx, `SELECT permissions::text FROM api_keys WHERE id = $1`, k.ID).Scan(&perms); err != nil {
					t.Fatal(err)
				}
				got[k.ID] = perms
			}
			storetest.CheckPermissionsDown00006(t, got)
		})
	}
	// Up again, as a restart of the new version would.
	s = open(t, url)
	defer func() { _ = s.Close() }() // only read
	k, err := s.Repo(apikey.Live).GetKey(ctx, "key_managed_secret")
	if err != nil || !slices.Contains(k.Permissions["account:api:key"], "verify") {
		t.Errorf("after up again: %v, %v; want account:api:key verify", k, err)
	}
}
