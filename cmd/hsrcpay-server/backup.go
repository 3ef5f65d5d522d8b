package main

// backup and restore (issue 20): an online copy of the SQLite store, and
// the way back; for PostgreSQL, the procedure with PostgreSQL's own tools.

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// backupCommands are backup and restore, for the root command.
func backupCommands(stdout, stderr io.Writer) []*cobra.Command {
	var to, from string
	backup := &cobra.Command{
		Use:   "backup --to DIR",
		Short: "Copy the SQLite store into a new directory while servers keep serving",
		Long: `Copies both modes' SQLite databases (live.db and sandbox.db in the directory
of HSRCPAY_DATABASE_URL=sqlite:DIR) into the new directory --to (0700, files
0600), while servers keep serving and writing: each file is one consistent
snapshot (SQLite's VACUUM INTO on a read-only connection), checked with
quick_check and synced; the directory appears only once both are complete.
It does not copy the idempotency key file (HSRCPAY_IDEMPOTENCY_KEY_FILE, or
DIR.idempotency.key), kept apart on purpose: see 'restore --help'.
Restore with 'hsrcpay-server restore --from DIR'.
With PostgreSQL it copies nothing: it prints the pg_dump procedure (exit 2).`,
		Example: "  HSRCPAY_DATABASE_URL=sqlite:/var/lib/hsrcpay hsrcpay-server backup --to /backups/hsrcpay-$(date +%F)",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(backupRun(to, serveLookup(c.Flags(), os.LookupEnv), stdout, stderr))
		},
	}
	backup.DisableFlagsInUseLine = true // its Use spells them out
	backup.Flags().StringVar(&to, "to", "", "new directory to write the backup into; must not exist (required)")
	restore := &cobra.Command{
		Use:   "restore --from DIR",
		Short: "Put a backup into an empty SQLite data directory (servers stopped)",
		Long: `Puts a backup made by 'hsrcpay-server backup' into the data directory of
HSRCPAY_DATABASE_URL=sqlite:DIR, which must hold no database: stop every
server and tool using the old directory and move it away first (nothing is
deleted). Both files are checked (quick_check) before either is written.
Then start the server: it applies any migration the backup predates.
Keys, accounts, audit trails and usage are those of the backup's moment.
The idempotency key file is not in the backup: put the one the servers used
back at its place (HSRCPAY_IDEMPOTENCY_KEY_FILE, or DIR.idempotency.key)
and answers stored for Idempotency-Key retries stay replayable; without it
a new key is made at start, and a retry of a request made before the
backup is refused (409, not replayable) instead of replayed: it never runs
twice, and nothing else is lost.`,
		Example: "  HSRCPAY_DATABASE_URL=sqlite:/var/lib/hsrcpay hsrcpay-server restore --from /backups/hsrcpay-2025-01-31",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(restoreRun(from, serveLookup(c.Flags(), os.LookupEnv), stdout, stderr))
		},
	}
	restore.DisableFlagsInUseLine = true // its Use spells them out
	restore.Flags().StringVar(&from, "from", "", "backup directory, as 'backup --to' wrote it (required)")
	// The store flags of every command that opens the store (storeflags.go).
	registerSettingFlags(backup, storeSettings...)
	registerSettingFlags(restore, storeSettings...)
	return []*cobra.Command{backup, restore}
}

// postgresBackupHelp is what backup prints for a PostgreSQL store. pg_dump
// takes one snapshot for both schemas: the dump is one moment of both modes.
var postgresBackupHelp = `hsrcpay-server backup: HSRCPAY_DATABASE_URL is PostgreSQL: back it up with PostgreSQL's tools
(pg_dump as new as the server); nothing was written. The two schemas hold everything:

  pg_dump --format=custom --schema=` + postgres.Schemas[apikey.Live] + ` --schema=` + postgres.Schemas[apikey.Sandbox] + ` \
    --file=hsrcpay.dump "$HSRCPAY_DATABASE_URL"

It runs while servers serve (one consistent snapshot of both schemas). To restore,
into a new, empty database, as the role the servers connect as:

  createdb hsrcpay_restored
  pg_restore --exit-on-error --no-owner --dbname="postgres://…/hsrcpay_restored" hsrcpay.dump
  HSRCPAY_DATABASE_URL="postgres://…/hsrcpay_restored" hsrcpay-server audit verify

then point the servers' HSRCPAY_DATABASE_URL at it and start them (they apply any
migration the dump predates). Keep HSRCPAY_IDEMPOTENCY_KEY_FILE with the servers'
configuration, apart from the dumps.
`

// sqliteDir is the configuration and the SQLite data directory it names, for
// backup and restore; another store gets notSQLite on stderr (exit 2).
func sqliteDir(cmd string, lookup func(string) (string, bool), stderr io.Writer, notSQLite string) (config.Config, string, int) {
	cfg, code := loadConfig(lookup, stderr)
	if code != 0 {
		return cfg, "", code
	}
	kind, dir, err := config.ParseDatabaseURL(cfg.DatabaseURL)
	if err != nil { // config.Load checked it already
		eprintf(stderr, "hsrcpay-server %s: HSRCPAY_DATABASE_URL: %v\n", cmd, err)
		return cfg, "", 2
	}
	if kind != config.SQLite {
		eprintf(stderr, "%s", notSQLite)
		return cfg, "", 2
	}
	return cfg, dir, 0
}

func backupRun(to string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if to == "" {
		eprintf(stderr, "hsrcpay-server backup: --to is required: a new directory to write the backup into\n")
		return 2
	}
	cfg, dir, code := sqliteDir("backup", lookup, stderr, postgresBackupHelp)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	files, err := sqlite.Backup(ctx, dir, to)
	if err != nil {
		eprintf(stderr, "hsrcpay-server backup: %v\n", err)
		return 1
	}
	for _, f := range files {
		if _, err := fmt.Fprintf(stdout, "%s: %s (%d bytes, schema version %d)\n", f.Mode, f.Path, f.Size, f.Version); err != nil {
			eprintf(stderr, "hsrcpay-server backup: writing output: %v\n", err)
			return 1
		}
	}
	eprintf(stderr, "hsrcpay-server backup: not in the backup, on purpose: the idempotency key file %s; keep a copy apart from the backups (see 'hsrcpay-server restore --help')\n", idempotencyKeyPath(cfg, dir))
	return 0
}

func restoreRun(from string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if from == "" {
		eprintf(stderr, "hsrcpay-server restore: --from is required: the directory 'backup --to' wrote\n")
		return 2
	}
	cfg, dir, code := sqliteDir("restore", lookup, stderr,
		"hsrcpay-server restore: HSRCPAY_DATABASE_URL is PostgreSQL: restore a pg_dump with pg_restore (see 'hsrcpay-server backup' with this URL)\n")
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	files, err := sqlite.Restore(ctx, from, dir)
	if err != nil {
		eprintf(stderr, "hsrcpay-server restore: %v\n", err)
		return 1
	}
	for _, f := range files {
		if _, err := fmt.Fprintf(stdout, "%s: %s (%d bytes, schema version %d)\n", f.Mode, f.Path, f.Size, f.Version); err != nil {
			eprintf(stderr, "hsrcpay-server restore: writing output: %v\n", err)
			return 1
		}
	}
	key := idempotencyKeyPath(cfg, dir)
	if _, err := os.Stat(key); err != nil {
		eprintf(stderr, "hsrcpay-server restore: no idempotency key file at %s: put the servers' copy there before starting, or answers stored for Idempotency-Key retries before the backup will not be replayed (refused, 409; nothing else is lost)\n", key)
	}
	return 0
}

// idempotencyKeyPath is where serve reads the idempotency key for a SQLite
// store in dir (idempotencyKey in main.go).
func idempotencyKeyPath(cfg config.Config, dir string) string {
	if cfg.IdempotencyKeyFile != "" {
		return cfg.IdempotencyKeyFile
	}
	return filepath.Clean(dir) + ".idempotency.key"
}
