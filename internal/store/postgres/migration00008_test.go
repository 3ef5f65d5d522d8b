package postgres_test

import (
	"database/sql"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestMigration00008 seeds each mode's schema at version 7 (keys not deleted
// and one deleted, an account without keys), lets Open migrate it and checks
// live_keys' backfill; then down to 7 and up again.
func TestMigration00008(t *testing.T) {
	ctx := t.Context()
	url := storetest.FreshPostgresDB(t)
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
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
			if _, err := p.UpTo(ctx, 7); err != nil {
				t.Fatalf("%s: goose up to 7: %v", m, err)
			}
			for _, acct := range []string{storetest.SeedAccount, storetest.EmptyAccount} {
				if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES ($1, $2)`, acct, created); err != nil {
					t.Fatal(err)
				}
			}
			for id, deleted := range storetest.Pre00008Keys {
				_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions,
					metadata, status, managed, deleted, created_at, updated_at)
					VALUES ($1, $2, $1, 'SECRET', $3, '{}', '{}', 'ACTIVE', FALSE, $4, $5, $5)`,
					id, storetest.SeedAccount, []byte(id), deleted, created)
				if err != nil {
					t.Fatalf("%s: seed %s: %v", m, id, err)
				}
			}
		})
	}
	check := func(when string) {
		t.Helper()
		for _, m := range apikey.Modes {
			inSchema(m, func(db *sql.DB, _ *goose.Provider) {
				for acct, want := range map[string]int{storetest.SeedAccount: storetest.LiveKeys00008, storetest.EmptyAccount: 0} {
					var n int
					if err := db.QueryRowContext(ctx, `SELECT live_keys FROM accounts WHERE id = $1`, acct).Scan(&n); err != nil || n != want {
						t.Errorf("%s, %s: %s live_keys = %d, %v; want %d", when, m, acct, n, err, want)
					}
				}
			})
		}
	}
	if err := open(t, url).Close(); err != nil {
		t.Fatal(err)
	}
	check("after 00008")
	for _, m := range apikey.Modes {
		inSchema(m, func(_ *sql.DB, p *goose.Provider) {
			if _, err := p.DownTo(ctx, 7); err != nil {
				t.Fatalf("%s: goose down to 7: %v", m, err)
			}
		})
	}
	if err := open(t, url).Close(); err != nil { // up again, as a restart of the new version would
		t.Fatal(err)
	}
	check("after down and up")
}
