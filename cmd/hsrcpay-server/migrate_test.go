package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// migrateStore is a fresh, unmigrated store of one kind, and how to mark
// it migrated by a newer binary (a version this binary does not hold).
type migrateStore struct {
	name string
	// fresh returns HSRCPAY_DATABASE_URL and a check that nothing was
	// created in it.
	fresh func(t *testing.T) (dbURL string, untouched func() bool)
	// newer records version v as applied in the live part.
	newer func(t *testing.T, dbURL string, v int64)
}

var migrateStores = []migrateStore{
	{
		name: "sqlite",
		fresh: func(t *testing.T) (string, func() bool) {
			dir := filepath.Join(t.TempDir(), "data")
			return "sqlite:" + dir, func() bool { _, err := os.Stat(dir); return os.IsNotExist(err) }
		},
		newer: func(t *testing.T, dbURL string, v int64) {
			db, err := sql.Open("sqlite", filepath.Join(strings.TrimPrefix(dbURL, "sqlite:"), "live.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = db.Close() }() // the insert's result is the check
			if _, err := db.ExecContext(t.Context(), `INSERT INTO goose_db_version (version_id, is_applied) VALUES (?, 1)`, v); err != nil {
				t.Fatal(err)
			}
		},
	},
	{
		name: "postgres",
		fresh: func(t *testing.T) (string, func() bool) {
			u := storetest.FreshPostgresDB(t)
			return u, func() bool {
				var n int
				pgExec(t, u, func(c *pgx.Conn) error {
					return c.QueryRow(t.Context(), `SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'hsrcpay\_%'`).Scan(&n)
				})
				return n == 0
			}
		},
		newer: func(t *testing.T, dbURL string, v int64) {
			pgExec(t, dbURL, func(c *pgx.Conn) error {
				_, err := c.Exec(t.Context(), `INSERT INTO hsrcpay_live.goose_db_version (version_id, is_applied) VALUES ($1, true)`, v)
				return err
			})
		},
	},
}

func pgExec(t *testing.T, dbURL string, fn func(*pgx.Conn) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close(ctx) }() // fn's error is the result
	if err := fn(c); err != nil {
		t.Fatal(err)
	}
}

// parts are the store's parts as migrate names them.
func parts(kind string) []string {
	if kind == "sqlite" {
		return []string{"live.db", "sandbox.db"}
	}
	return []string{"hsrcpay_live", "hsrcpay_test"}
}

// TestMigrateCommands: status on a fresh store (every migration pending,
// nothing created), up, status (all applied), down --to 8 (00009 and 00010
// rolled back, pending again), up again, and a store that then opens
// without migrating; usage errors exit 2.
func TestMigrateCommands(t *testing.T) {
	latest := sqlite.Latest()
	if latest != postgres.Latest() || latest < 10 {
		t.Fatalf("the stores hold %d and %d migrations: migrate validates --to against one count", latest, postgres.Latest())
	}
	for _, ms := range migrateStores {
		t.Run(ms.name, func(t *testing.T) {
			dbURL, untouched := ms.fresh(t)
			t.Setenv("HSRCPAY_DATABASE_URL", dbURL)
			mustRun := func(args ...string) string {
				t.Helper()
				code, out, errOut := runCLI(args...)
				if code != 0 {
					t.Fatalf("%v: exit %d: %s", args, code, errOut)
				}
				return out
			}
			status := func(wantVersion int64, pending ...string) {
				t.Helper()
				out := mustRun("migrate", "status")
				for _, p := range parts(ms.name) {
					wantAll(t, "status", out, fmt.Sprintf("%s: version %d (this binary: %d)", p, wantVersion, latest))
				}
				for v := int64(1); v <= latest; v++ {
					state := "applied"
					if strings.Contains(strings.Join(pending, ","), fmt.Sprintf("%05d", v)) {
						state = "pending"
					}
					if n := strings.Count(out, fmt.Sprintf("  %s  %05d_", state, v)); n != 2 {
						t.Errorf("migration %d: %q in %d parts, want 2:\n%s", v, state, n, out)
					}
				}
			}

			var all []string
			for v := int64(1); v <= latest; v++ {
				all = append(all, fmt.Sprintf("%05d", v))
			}
			status(0, all...)
			if !untouched() {
				t.Fatal("migrate status created the store")
			}
			// Serving without migrating refuses the empty store (TestServeMigrateOff
			// checks the message); bootstrap opens the store as serve does.
			t.Setenv("HSRCPAY_MIGRATE", "off")
			if code, _, errOut := runCLI("bootstrap", "--account", "acct_mig"); code != 1 || !strings.Contains(errOut, "hsrcpay-server migrate up") {
				t.Fatalf("bootstrap with HSRCPAY_MIGRATE=off on an empty store: exit %d, %s", code, errOut)
			}

			out := mustRun("migrate", "up")
			for _, p := range parts(ms.name) {
				wantAll(t, "up", out, p+": applied 00001_init.sql", p+": applied 00010_idempotency_holder.sql", fmt.Sprintf("%s: at version %d", p, latest))
			}
			status(latest)
			mustRun("bootstrap", "--account", "acct_mig") // off, on a migrated store

			out = mustRun("migrate", "down", "--to", "8")
			for _, p := range parts(ms.name) {
				wantAll(t, "down", out, p+": rolled back 00010_idempotency_holder.sql", p+": rolled back 00009_name_key.sql", p+": at version 8")
			}
			if strings.Contains(out, "00008") {
				t.Errorf("down --to 8 rolled back 00008:\n%s", out)
			}
			var above8 []string
			for v := int64(9); v <= latest; v++ {
				above8 = append(above8, fmt.Sprintf("%05d", v))
			}
			status(8, above8...)
			if code, _, errOut := runCLI("bootstrap", "--account", "acct_mig2"); code != 1 || !strings.Contains(errOut, "version 8, older than this binary's") {
				t.Fatalf("bootstrap with HSRCPAY_MIGRATE=off at version 8: exit %d, %s", code, errOut)
			}

			out = mustRun("migrate", "up")
			wantAll(t, "up again", out, "applied 00009_name_key.sql", "applied 00010_idempotency_holder.sql")
			if strings.Contains(out, "00008") {
				t.Errorf("up again applied 00008 again:\n%s", out)
			}
			status(latest)
			mustRun("bootstrap", "--account", "acct_mig2")
			// The account made before the round trip is still there.
			if code, _, errOut := runCLI("bootstrap", "--account", "acct_mig"); code != 1 || !strings.Contains(errOut, "exists") {
				t.Errorf("bootstrap of the account made before down and up: exit %d, %s", code, errOut)
			}
			if out := mustRun("migrate", "up"); strings.Contains(out, "applied") {
				t.Errorf("up on an up-to-date store applied something:\n%s", out)
			}

			for _, tc := range []struct {
				args []string
				want string
			}{
				{[]string{"migrate", "down"}, "--to N is required"},
				{[]string{"migrate", "down", "--to", "0"}, "0 would drop every key"},
				{[]string{"migrate", "up", "--to", strconv.FormatInt(latest+1, 10)}, "--to must be a version this binary holds"},
				{[]string{"migrate", "up", "--to", "x"}, "invalid argument"},
				{[]string{"migrate"}, "Available Commands"},
				{[]string{"migrate", "sideways"}, "unknown command"},
			} {
				if code, out, errOut := runCLI(tc.args...); code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
					t.Errorf("%v: exit %d, stderr %q, stdout %q", tc.args, code, errOut, out)
				}
			}
			status(latest) // the refused commands changed nothing
		})
	}
}

// TestServeMigrateOff: serve with HSRCPAY_MIGRATE=off refuses an unmigrated
// store (exit 1, naming 'hsrcpay-server migrate up') and leaves it
// unmigrated; after migrate up it serves (a key is created through it); a
// schema a newer binary migrated is refused too, and so is rolling it back
// with this binary.
func TestServeMigrateOff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, ms := range migrateStores {
		t.Run(ms.name, func(t *testing.T) {
			dbURL, untouched := ms.fresh(t)
			env := []string{"HSRCPAY_DATABASE_URL=" + dbURL, "HSRCPAY_MIGRATE=off", "HSRCPAY_ADDR=127.0.0.1:0", "HSRCPAY_METRICS_ADDR="}
			code, _, errOut := runBinary(t, env, "serve")
			if code != 1 || !strings.Contains(errOut, "older than this binary's") || !strings.Contains(errOut, "run 'hsrcpay-server migrate up'") {
				t.Fatalf("serve on an unmigrated store: exit %d, stderr:\n%s", code, errOut)
			}
			if ms.name == "postgres" && !untouched() {
				t.Fatal("serve with HSRCPAY_MIGRATE=off created the schemas")
			}
			if code, _, errOut := runBinary(t, env, "migrate", "up"); code != 0 {
				t.Fatalf("migrate up: exit %d: %s", code, errOut)
			}
			checkServesCreate(t, "acct_off", env[:2]...)

			// A newer binary migrated: off refuses, naming the way back.
			ms.newer(t, dbURL, sqlite.Latest()+1)
			code, _, errOut = runBinary(t, env, "serve")
			if code != 1 || !strings.Contains(errOut, "newer than this binary's") || !strings.Contains(errOut, "migrate down --to "+strconv.FormatInt(sqlite.Latest(), 10)) {
				t.Fatalf("serve on a newer schema: exit %d, stderr:\n%s", code, errOut)
			}
			code, out, errOut := runBinary(t, env, "migrate", "down", "--to", "9")
			if code != 1 || !strings.Contains(errOut, "roll it back with the binary that migrated it") || len(out) != 0 {
				t.Fatalf("down on a newer schema: exit %d, stdout %s, stderr:\n%s", code, out, errOut)
			}
			code, out, errOut = runBinary(t, env, "migrate", "status")
			if code != 0 || !strings.Contains(string(out), "newer than this binary's") || !strings.Contains(string(out), "  applied  00010_") {
				t.Fatalf("status on a newer schema: exit %d, stdout %s, stderr:\n%s", code, out, errOut)
			}
		})
	}
}

// checkServesCreate starts serve with env and a demo account, and creates a
// key with the demo account's secret.
func checkServesCreate(t *testing.T, account string, env ...string) {
	t.Helper()
	cmd, base, vars := startServer(t, append(env, "HSRCPAY_DEMO_ACCOUNT="+account)...)
	if vars["HSRCPAY_API_KEY"] == "" {
		t.Fatalf("serve printed no demo key (exited: %v)", cmd.ProcessState)
	}
	c, err := client.New(base, vars["HSRCPAY_API_KEY"], client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateAPIKey(t.Context(), account, client.CreateAPIKeyRequest{Name: "made by " + t.Name(), Permissions: client.Permissions{"payment": {"read"}}})
	if err != nil || !strings.HasPrefix(k.Key, "sk_test_") {
		t.Fatalf("create through the server: %+v, %v", k, err)
	}
}

// TestMigrationURLWithAppRole: the application's role has no DDL rights
// (it cannot create a schema, so serve with HSRCPAY_MIGRATE=auto and no
// migration URL fails); migrate up with HSRCPAY_MIGRATION_DATABASE_URL (the
// owner) creates the schemas; after the grants a DBA gives (usage, and
// select/insert/update/delete), serve as the application's role creates
// keys, with HSRCPAY_MIGRATE=off and with auto beside the migration URL.
func TestMigrationURLWithAppRole(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	ownerURL := storetest.FreshPostgresDB(t)
	role := fmt.Sprintf("hsrcpay_app_%d", time.Now().UnixNano())
	pgExec(t, ownerURL, func(c *pgx.Conn) error {
		_, err := c.Exec(t.Context(), `CREATE ROLE `+role+` LOGIN`)
		return err
	})
	t.Cleanup(func() { // before the database is dropped: its grants go first
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := pgx.Connect(ctx, ownerURL)
		if err != nil {
			t.Errorf("drop role: %v", err)
			return
		}
		defer func() { _ = c.Close(ctx) }() // the statements' errors are the result
		if _, err := c.Exec(ctx, `DROP OWNED BY `+role+`; DROP ROLE `+role); err != nil {
			t.Errorf("drop role %s: %v", role, err)
		}
	})
	u, err := url.Parse(ownerURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	appURL := u.String()
	// The premise: the application's role may not change the schema.
	pgExec(t, appURL, func(c *pgx.Conn) error {
		if _, err := c.Exec(t.Context(), `CREATE SCHEMA hsrcpay_app_probe`); err == nil {
			return fmt.Errorf("the application's role %s may create a schema: the test proves nothing", role)
		}
		return nil
	})
	app := []string{"HSRCPAY_DATABASE_URL=" + appURL}
	if code, _, errOut := runBinary(t, append(app, "HSRCPAY_ADDR=127.0.0.1:0", "HSRCPAY_METRICS_ADDR="), "serve"); code != 1 || !strings.Contains(errOut, "permission denied") {
		t.Fatalf("serve migrating as the application's role: exit %d, stderr:\n%s", code, errOut)
	}

	withOwner := append(app, "HSRCPAY_MIGRATION_DATABASE_URL="+ownerURL)
	if code, out, errOut := runBinary(t, withOwner, "migrate", "up"); code != 0 || !strings.Contains(string(out), "hsrcpay_test: at version") {
		t.Fatalf("migrate up with the owner's URL: exit %d, %s, %s", code, out, errOut)
	}
	pgExec(t, ownerURL, func(c *pgx.Conn) error {
		_, err := c.Exec(t.Context(), `GRANT USAGE ON SCHEMA hsrcpay_live, hsrcpay_test TO `+role+`;
			GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA hsrcpay_live, hsrcpay_test TO `+role)
		return err
	})
	checkServesCreate(t, "acct_app_off", append(app, "HSRCPAY_MIGRATE=off")...)
	checkServesCreate(t, "acct_app_auto", withOwner...)
	// The rows are the application's role's writes, in the owner's tables.
	pgExec(t, ownerURL, func(c *pgx.Conn) error {
		var n int
		if err := c.QueryRow(t.Context(), `SELECT count(*) FROM hsrcpay_test.api_keys WHERE account_id IN ('acct_app_off', 'acct_app_auto') AND NOT managed`).Scan(&n); err != nil {
			return err
		}
		if n != 2 {
			return fmt.Errorf("%d custom keys in the owner's tables, want 2", n)
		}
		return nil
	})
}
