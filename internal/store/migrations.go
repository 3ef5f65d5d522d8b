package store

import (
	"context"
	"fmt"
	"time"
)

// SchemaPolicy says what opening a store does about its schema's version.
type SchemaPolicy int

const (
	// SchemaMigrate applies the migrations the schema lacks (the default,
	// HSRCPAY_MIGRATE=auto): a schema a newer binary migrated is served as it is.
	SchemaMigrate SchemaPolicy = iota
	// SchemaExact migrates nothing and refuses a schema at another version
	// than the binary's, older or newer (HSRCPAY_MIGRATE=off): a
	// *SchemaVersionError.
	SchemaExact
	// SchemaNotOlder migrates nothing and refuses a schema older than the
	// binary's; a newer one is served as SchemaMigrate serves it (after the
	// migrations ran with another URL, HSRCPAY_MIGRATION_DATABASE_URL).
	SchemaNotOlder
)

// SchemaVersionError is a store part (a SQLite file, a PostgreSQL schema)
// whose schema is not at the version this binary was built for.
type SchemaVersionError struct {
	Part       string // live.db, sandbox.db; hsrcpay_live, hsrcpay_test
	Have, Want int64
}

func (e *SchemaVersionError) Error() string {
	if e.Have > e.Want {
		return fmt.Sprintf("the schema of %s is at version %d, newer than this binary's (%d)", e.Part, e.Have, e.Want)
	}
	return fmt.Sprintf("the schema of %s is at version %d, older than this binary's (%d)", e.Part, e.Have, e.Want)
}

// Newer says whether the schema is ahead of the binary.
func (e *SchemaVersionError) Newer() bool { return e.Have > e.Want }

// MigrationState is one migration the binary holds, in one store part.
type MigrationState struct {
	Version   int64
	Name      string // its file, such as 00004_hints_lists_audit.sql
	Applied   bool
	AppliedAt time.Time // when it was applied (the database's clock); zero when pending
}

// PartStatus is the schema of one store part: a SQLite file or a
// PostgreSQL schema, one per mode.
type PartStatus struct {
	Part string
	// Version is the newest migration applied (0: none). It may be above
	// every migration the binary holds, when a newer binary migrated.
	Version    int64
	Migrations []MigrationState // every migration the binary holds, oldest first
}

// MigrationRun is one migration applied (Up) or rolled back in one part.
type MigrationRun struct {
	Part     string
	Version  int64
	Name     string
	Up       bool
	Duration time.Duration
}

// Migrator applies a store's embedded migrations on an operator's demand
// (hsrcpay-server migrate). Up and Down hold the store's migration lock (a
// PostgreSQL advisory lock, which serving replicas that migrate take too).
type Migrator interface {
	// Latest is the newest migration the binary holds.
	Latest() int64
	Status(ctx context.Context) ([]PartStatus, error)
	// Up applies the pending migrations up to version to (0: all) in every
	// part; done hears of each as it is applied.
	Up(ctx context.Context, to int64, done func(MigrationRun)) error
	// Down rolls back every applied migration above version to, newest
	// first, in every part; done hears of each as it is rolled back.
	Down(ctx context.Context, to int64, done func(MigrationRun)) error
	Close() error
}
