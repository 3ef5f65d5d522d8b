package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

const migrateLong = `Shows, applies and rolls back the store's schema migrations, embedded in the
binary: one set per mode (the SQLite files live.db and sandbox.db, the
PostgreSQL schemas hsrcpay_live and hsrcpay_test). They run with
HSRCPAY_MIGRATION_DATABASE_URL when it is set (a role that may change the
schema), else with HSRCPAY_DATABASE_URL; on PostgreSQL up and down hold the
advisory lock that serving replicas take to migrate, so they never race.
With HSRCPAY_MIGRATE=off, serve never migrates: run 'migrate up' before
starting a new release. Settings come from the environment.`

const migrateStatusLong = `Prints, for each mode, the schema's version and each migration the binary
holds, applied (with when) or pending. It changes nothing: on a fresh store it
creates no file, schema or table.`

const migrateUpLong = `Applies the pending migrations, oldest first, up to the newest the binary
holds or to --to N, in each mode, then fills the name keys that only the
binary can compute (as serve does at start). Each migration is one
transaction: one that fails is rolled back and named (exit 1); those before it
stay applied, and running up again resumes. A schema that is already at the
version, or that a newer binary migrated, is left as it is (exit 0).`

// migrateDownLong says what each Down loses: the operator rolls back a
// release with the newer binary (the older one does not hold the Down of
// what it does not know), before starting the older one.
const migrateDownLong = `Rolls back every migration above version N, newest first, in each mode: to
run before going back to a release whose binary holds N migrations
('hsrcpay-server version' of that release; its 'migrate status' lists them).
Run it with the newer binary, which holds the Downs; it refuses (exit 1,
changing nothing) a schema that an even newer binary migrated. --to 0 is
refused: it would drop every key (drop the database instead). Each migration
is one transaction: one that fails is rolled back and named (exit 1), and the
ones rolled back before it stay so. Take a backup first: what a Down drops is
gone, and 'migrate up' brings the columns back, not their values.

What rolling back each migration loses (both stores):
  00013  every key's own rate limit: those keys spend their mode's default
         budget again
  00012  every key's allowed networks: restricted keys work from any
         address again
  00011  nothing (PostgreSQL counts live keys at each write again, not at
         COMMIT; SQLite's is empty)
  00010  which replica holds each Idempotency-Key claim in progress: a claim
         of a replica that died waits for its lease to run out
  00009  the name keys, by which look-alike names of live keys are
         duplicates (refilled by the next up)
  00008  each account's counter of live keys (recounted by the next up)
  00007  every Idempotency-Key record: a retry of a request made before
         runs again instead of getting the kept answer
  00006  the permission account:api:key verify of managed secret keys
         (custom keys granted it keep it; the next up grants it again)
  00005  an index: nothing
  00004  the whole audit trail (every event and each account's chain head),
         every key's hint, and account:audit read of managed secret keys
  00003  who created each key, and which expired keys gave their name up:
         fails, changing nothing, while an account has two keys of one name
         that are not deleted (one of them expired)
  00002  the replaced secrets still in their grace period: they stop working
  00001  everything (refused: --to must be 1 or more)`

// newMigrateCmd is the "migrate" group; its commands join it after it joined
// the root (addMigrateCmds), so that the help's padding counts full paths.
func newMigrateCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:         "migrate",
		Short:       "Show, apply or roll back the store's schema migrations",
		Long:        migrateLong,
		Annotations: map[string]string{"group": "true"},
		RunE:        groupRun(stdout, stderr),
	}
}

// addMigrateCmds adds status, up and down to the migrate group.
func addMigrateCmds(migrate *cobra.Command, stdout, stderr io.Writer) {
	status := &cobra.Command{
		Use:   "status",
		Short: "Print each mode's schema version and each migration, applied or pending",
		Long:  migrateStatusLong,
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			return exit(withMigrator("status", stderr, func(ctx context.Context, m store.Migrator) error {
				return migrateStatus(ctx, m, stdout)
			}))
		},
	}
	var upTo int64
	up := &cobra.Command{
		Use:     "up [--to N]",
		Short:   "Apply the pending migrations (all, or up to version N)",
		Long:    migrateUpLong,
		Example: "  hsrcpay-server migrate up\n  hsrcpay-server migrate up --to 9",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if c.Flags().Changed("to") && (upTo < 1 || upTo > sqlite.Latest()) {
				eprintf(stderr, "hsrcpay-server migrate up: --to must be a version this binary holds, 1 to %d\n", sqlite.Latest())
				return exitCode(2)
			}
			return exit(withMigrator("up", stderr, func(ctx context.Context, m store.Migrator) error {
				return migrateRun(ctx, m, true, upTo, stdout)
			}))
		},
	}
	up.DisableFlagsInUseLine = true // its Use spells them out
	up.Flags().Int64Var(&upTo, "to", 0, "version to stop at (default: the newest this binary holds)")
	var downTo int64
	down := &cobra.Command{
		Use:     "down --to N",
		Short:   "Roll back every migration above version N (to run an older release)",
		Long:    migrateDownLong,
		Example: "  hsrcpay-server migrate down --to 9",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			if !c.Flags().Changed("to") || downTo < 1 || downTo > sqlite.Latest() {
				eprintf(stderr, "hsrcpay-server migrate down: --to N is required, N a version this binary holds, 1 to %d (0 would drop every key)\n", sqlite.Latest())
				return exitCode(2)
			}
			return exit(withMigrator("down", stderr, func(ctx context.Context, m store.Migrator) error {
				return migrateRun(ctx, m, false, downTo, stdout)
			}))
		},
	}
	down.DisableFlagsInUseLine = true // its Use spells them out
	down.Flags().Int64Var(&downTo, "to", 0, "version to roll back to, 1 or more (required)")
	migrate.AddCommand(status, up, down)
}

// withMigrator runs fn on the migrator of the configured store: exit 0, 1
// (fn failed, said on stderr) or 2 (a bad configuration).
func withMigrator(cmd string, stderr io.Writer, fn func(context.Context, store.Migrator) error) int {
	cfg, code := loadConfig(os.LookupEnv, stderr)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m, err := openMigrator(cfg)
	if err == nil {
		defer func() { _ = m.Close() }() // its work is committed or failed already
		err = fn(ctx, m)
	}
	if err != nil {
		eprintf(stderr, "hsrcpay-server migrate %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// openMigrator is the migrations of the configured store, with the migration
// URL when there is one.
func openMigrator(cfg config.Config) (store.Migrator, error) {
	url, name := cfg.DatabaseURL, "HSRCPAY_DATABASE_URL"
	if cfg.MigrationURL != "" {
		url, name = cfg.MigrationURL, "HSRCPAY_MIGRATION_DATABASE_URL"
	}
	kind, loc, err := config.ParseDatabaseURL(url)
	if err != nil { // config.Load checked it already
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	switch kind {
	case config.SQLite:
		return sqlite.NewMigrator(loc, sqlite.Options{Synchronous: cfg.SQLiteSynchronous}), nil
	case config.Postgres:
		return postgres.NewMigrator(loc)
	}
	return nil, fmt.Errorf("%s: unknown store %q", name, kind)
}

// migrateStatus prints each part's version and migrations.
func migrateStatus(ctx context.Context, m store.Migrator, stdout io.Writer) error {
	parts, err := m.Status(ctx)
	if err != nil {
		return err
	}
	var b strings.Builder
	for _, p := range parts {
		pending := 0
		for _, mg := range p.Migrations {
			if !mg.Applied {
				pending++
			}
		}
		state := "up to date"
		switch {
		case p.Version > m.Latest():
			state = fmt.Sprintf("newer than this binary's %d: a newer binary migrated it", m.Latest())
		case pending > 0:
			state = fmt.Sprintf("%d pending: run 'hsrcpay-server migrate up'", pending)
		}
		fmt.Fprintf(&b, "%s: version %d (this binary: %d), %s\n", p.Part, p.Version, m.Latest(), state)
		for _, mg := range p.Migrations {
			if mg.Applied {
				at := "at an unknown time"
				if !mg.AppliedAt.IsZero() {
					at = mg.AppliedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(&b, "  applied  %-36s %s\n", mg.Name, at)
			} else {
				fmt.Fprintf(&b, "  pending  %s\n", mg.Name)
			}
		}
	}
	_, err = io.WriteString(stdout, b.String())
	return err
}

// migrateRun applies (up) or rolls back (down) to version to, printing each
// migration as it is run, then where each part stands.
func migrateRun(ctx context.Context, m store.Migrator, up bool, to int64, stdout io.Writer) error {
	var werr error
	done := func(r store.MigrationRun) {
		verb := "rolled back"
		if r.Up {
			verb = "applied"
		}
		if _, err := fmt.Fprintf(stdout, "%s: %s %s (%s)\n", r.Part, verb, r.Name, r.Duration.Round(time.Millisecond)); err != nil && werr == nil {
			werr = err
		}
	}
	var err error
	if up {
		err = m.Up(ctx, to, done)
	} else {
		err = m.Down(ctx, to, done)
	}
	var sv *store.SchemaVersionError
	if errors.As(err, &sv) && sv.Newer() {
		return fmt.Errorf("%w: roll it back with the binary that migrated it", err)
	}
	if err != nil {
		return err
	}
	parts, err := m.Status(ctx)
	if err != nil {
		return err
	}
	for _, p := range parts {
		note := ""
		if p.Version > m.Latest() {
			note = fmt.Sprintf(", newer than this binary's %d: left as it is", m.Latest())
		}
		if _, err := fmt.Fprintf(stdout, "%s: at version %d%s\n", p.Part, p.Version, note); err != nil && werr == nil {
			werr = err
		}
	}
	if werr != nil {
		return fmt.Errorf("writing output: %w", werr)
	}
	return nil
}
