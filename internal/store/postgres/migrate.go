package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/migrator"
	"github.com/hsrcpay/apikeys/internal/store/internal/namerow"
)

// migrationFS is the embedded migrations, as goose reads them.
func migrationFS() fs.FS { return migrator.Embedded(migrations) }

// Latest is the newest migration this binary holds.
func Latest() int64 { return migrator.Latest(migrationFS()) }

// newMigrator is the schemas of the database cc names, each through a
// database/sql handle whose search_path is the schema: the migration files
// use unqualified names, and goose's version table is named with its schema.
// Up and Down hold a session advisory lock (migrationLockKey) on a
// dedicated connection, so that replicas starting together, and an
// operator's migrate beside them, do not race; closing that connection
// releases the lock even if unlocking fails.
func newMigrator(cc *pgx.ConnConfig) *migrator.Migrator {
	m := &migrator.Migrator{FS: migrationFS()}
	var closers []func() error
	for _, mode := range apikey.Modes {
		schema := Schemas[mode]
		scc := cc.Copy()
		scc.RuntimeParams["search_path"] = pgx.Identifier{schema}.Sanitize()
		db := stdlib.OpenDB(*scc) // connects on first use
		closers = append(closers, db.Close)
		m.Parts = append(m.Parts, migrator.Part{
			Name:    schema,
			DB:      db,
			Dialect: goose.DialectPostgres,
			Table:   schema + "." + goose.DefaultTablename,
			// NULL, not an error, when the schema does not exist either.
			TableExists: `SELECT to_regclass('` + schema + `.` + goose.DefaultTablename + `') IS NOT NULL`,
			Prepare: func(ctx context.Context) error {
				// Look before creating: CREATE SCHEMA IF NOT EXISTS needs the
				// CREATE privilege even when the schema exists, and a DBA may
				// have made it.
				var exists bool
				if err := db.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&exists); err != nil {
					return fmt.Errorf("postgres: schema %s: %w", schema, err)
				}
				if !exists {
					if _, err := db.ExecContext(ctx, `CREATE SCHEMA `+pgx.Identifier{schema}.Sanitize()); err != nil {
						return fmt.Errorf("postgres: create schema %s: %w", schema, err)
					}
				}
				return nil
			},
			// Under the migration lock: replicas starting together fill the
			// keys once.
			Fill: func(ctx context.Context) error {
				_, err := namerow.Fill(ctx, db, nameKeySQL)
				return err
			},
		})
	}
	m.Lock = func(ctx context.Context) (func(), error) {
		conn, err := pgx.ConnectConfig(ctx, cc.Copy())
		if err != nil {
			return nil, fmt.Errorf("postgres: connect: %w", err)
		}
		// Closing ends the session, which releases the lock whatever Close says.
		release := func() { _ = conn.Close(context.WithoutCancel(ctx)) }
		if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLockKey); err != nil {
			release()
			return nil, fmt.Errorf("postgres: migration lock: %w", err)
		}
		return func() {
			_, _ = conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockKey) // Close releases it anyway
			release()
		}, nil
	}
	m.Closer = func() error {
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}
	return m
}

// migrate creates the schemas and applies the pending migrations in each,
// under the migration lock (Open with store.SchemaMigrate).
func migrate(ctx context.Context, cc *pgx.ConnConfig) error {
	m := newMigrator(cc)
	defer func() { _ = m.Close() }() // only the migrations used it
	if err := m.Up(ctx, 0, nil); err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// check is Open without migrating: each schema's version against the
// binary's (a *store.SchemaVersionError), and the name keys filled, under
// the migration lock, as after a migration.
func check(ctx context.Context, cc *pgx.ConnConfig, policy store.SchemaPolicy) error {
	m := newMigrator(cc)
	defer func() { _ = m.Close() }() // only the check used it
	unlock, err := m.Lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for _, p := range m.Parts {
		if err := p.Check(ctx, m.FS, policy); err != nil {
			return fmt.Errorf("postgres: %w", err)
		}
	}
	return nil
}

// NewMigrator is the migrations of the database url names, on demand
// (hsrcpay-server migrate). Status changes nothing; Up and Down hold the
// advisory lock that serving replicas migrating take too.
func NewMigrator(url string) (store.Migrator, error) {
	cfg, err := pgxpool.ParseConfig(url) // accepts (and drops) the pool's settings, as Open does
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return newMigrator(cfg.ConnConfig), nil
}
