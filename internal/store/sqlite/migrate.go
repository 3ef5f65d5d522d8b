package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

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

// part is mode's file, for the migrator.
func part(mode apikey.Mode, path string, db *sql.DB) migrator.Part {
	return migrator.Part{
		Name:        FileNames[mode],
		DB:          db,
		Dialect:     goose.DialectSQLite3,
		Table:       goose.DefaultTablename,
		TableExists: `SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = '` + goose.DefaultTablename + `'`,
		Missing: func() bool {
			_, err := os.Stat(path)
			return errors.Is(err, fs.ErrNotExist)
		},
		// Created 0600 before SQLite opens it (privateFiles), as Open does.
		Prepare: func(context.Context) error {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return fmt.Errorf("sqlite: create %s: %w", filepath.Dir(path), err)
			}
			return privateFiles(path)
		},
		Fill: func(ctx context.Context) error {
			_, err := namerow.Fill(ctx, db, nameKeySQL)
			return err
		},
	}
}

// NewMigrator is the migrations of the files in dir, on demand (hsrcpay-server
// migrate); Status creates nothing. SQLite's own locks order it with running
// servers: each migration is a transaction that waits for the writer.
func NewMigrator(dir string, opt Options) store.Migrator {
	if opt.Synchronous == "" {
		opt.Synchronous = "NORMAL"
	}
	m := &migrator.Migrator{FS: migrationFS()}
	var dbs []*sql.DB
	for _, mode := range apikey.Modes {
		path := filepath.Join(dir, FileNames[mode])
		// Opened lazily: no file is touched before a query, and none is
		// queried while Missing.
		db, err := sql.Open("sqlite", dsn(path, opt)+"&_txlock=immediate")
		if err != nil { // sql.Open only fails for an unknown driver
			panic(err)
		}
		db.SetMaxOpenConns(4) // as the tools' handle: goose holds one while the name keys may take another
		dbs = append(dbs, db)
		m.Parts = append(m.Parts, part(mode, path, db))
	}
	m.Closer = func() error {
		var errs []error
		for _, db := range dbs {
			errs = append(errs, db.Close())
		}
		return errors.Join(errs...)
	}
	return m
}
