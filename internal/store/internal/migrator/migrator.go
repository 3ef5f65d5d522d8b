// Package migrator is what both stores share about their goose migrations:
// reading a part's version without changing anything (status, and the check
// of HSRCPAY_MIGRATE=off), and applying or rolling back on an operator's
// demand (store.Migrator). A part is one mode's SQLite file or PostgreSQL
// schema; each has its own goose version table.
package migrator

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pressly/goose/v3"

	"github.com/hsrcpay/apikeys/internal/store"
)

// FillFrom is the first version whose rows carry a name key that only Go can
// compute (00009, namerow): after an Up reaching it, the part's Fill runs.
const FillFrom = 9

// Part is one SQLite file or PostgreSQL schema.
type Part struct {
	Name    string
	DB      *sql.DB // goose runs here (on PostgreSQL, with search_path the schema)
	Dialect goose.Dialect
	// Table is goose's version table as goose is told it (qualified on
	// PostgreSQL); TableExists answers (one boolean) whether it exists.
	Table, TableExists string
	// Missing, if set, says that the part does not exist yet (a SQLite file
	// not created): it is at version 0, and reading it must not create it.
	Missing func() bool
	// Prepare, if set, runs before an Up (PostgreSQL: the schema is created
	// if missing).
	Prepare func(context.Context) error
	// Fill fills the name keys (namerow) once the part is at FillFrom or later.
	Fill func(context.Context) error
}

// Migration is one file of the embedded set.
type Migration struct {
	Version int64
	Name    string
}

// List is the embedded set, oldest first: NNNNN_name.sql files.
func List(fsys fs.FS) ([]Migration, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, err
	}
	var ms []Migration
	for _, n := range names {
		v, err := strconv.ParseInt(strings.SplitN(path.Base(n), "_", 2)[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("migration %s: no version: %w", n, err)
		}
		ms = append(ms, Migration{Version: v, Name: n})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	return ms, nil
}

// Embedded is a store's embedded migrations directory ("migrations"), as
// goose reads it: the files at its root.
func Embedded(fsys fs.FS) fs.FS {
	sub, err := fs.Sub(fsys, "migrations")
	if err != nil { // the directory is embedded: this cannot happen
		panic(err)
	}
	return sub
}

// Latest is the newest version in fsys.
func Latest(fsys fs.FS) int64 {
	ms, err := List(fsys)
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// Applied reads the part's version table without creating it: the
// versions applied (goose deletes a version's row when it is rolled back)
// with their time, and the newest. A part without the table is at 0.
func (p Part) Applied(ctx context.Context) (map[int64]time.Time, int64, error) {
	if p.Missing != nil && p.Missing() {
		return map[int64]time.Time{}, 0, nil
	}
	var exists bool
	if err := p.DB.QueryRowContext(ctx, p.TableExists).Scan(&exists); err != nil {
		return nil, 0, fmt.Errorf("%s: version table: %w", p.Name, err)
	}
	applied := map[int64]time.Time{}
	if !exists {
		return applied, 0, nil
	}
	rows, err := p.DB.QueryContext(ctx, `SELECT version_id, tstamp FROM `+p.Table+` WHERE version_id > 0`) //nolint:gosec // Table is the store's own constant name of goose's table, never input
	if err != nil {
		return nil, 0, fmt.Errorf("%s: version table: %w", p.Name, err)
	}
	defer func() { _ = rows.Close() }() // read-only; rows.Err says how reading went
	var newest int64
	for rows.Next() {
		var (
			v  int64
			ts any
		)
		if err := rows.Scan(&v, &ts); err != nil {
			return nil, 0, fmt.Errorf("%s: version table: %w", p.Name, err)
		}
		applied[v] = timeOf(ts)
		newest = max(newest, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("%s: version table: %w", p.Name, err)
	}
	return applied, newest, nil
}

// timeOf reads goose's tstamp: a time from pgx; from SQLite, a time or its
// text, depending on how the driver reads a TIMESTAMP column.
func timeOf(v any) time.Time {
	switch t := v.(type) {
	case time.Time:
		return t.UTC()
	case string:
		for _, layout := range []string{time.DateTime, time.RFC3339Nano, "2006-01-02 15:04:05.999999999-07:00"} {
			if p, err := time.Parse(layout, t); err == nil {
				return p.UTC()
			}
		}
	case []byte:
		return timeOf(string(t))
	}
	return time.Time{}
}

// Check is the schema policy of an open that does not migrate: the part's
// version against the binary's newest.
func (p Part) Check(ctx context.Context, fsys fs.FS, policy store.SchemaPolicy) error {
	_, have, err := p.Applied(ctx)
	if err != nil {
		return err
	}
	want := Latest(fsys)
	if have < want || (have > want && policy == store.SchemaExact) {
		return &store.SchemaVersionError{Part: p.Name, Have: have, Want: want}
	}
	if have >= FillFrom && p.Fill != nil {
		return p.Fill(ctx)
	}
	return nil
}

// Migrator implements store.Migrator over the parts.
type Migrator struct {
	FS    fs.FS
	Parts []Part
	// Lock, if set, is held around Up and Down (and each part's Fill).
	Lock   func(context.Context) (unlock func(), err error)
	Closer func() error
}

var _ store.Migrator = (*Migrator)(nil)

func (m *Migrator) Latest() int64 { return Latest(m.FS) }

func (m *Migrator) Close() error {
	if m.Closer == nil {
		return nil
	}
	return m.Closer()
}

// Status reads every part; it changes nothing (a fresh store stays empty).
func (m *Migrator) Status(ctx context.Context) ([]store.PartStatus, error) {
	ms, err := List(m.FS)
	if err != nil {
		return nil, err
	}
	var out []store.PartStatus
	for _, p := range m.Parts {
		applied, newest, err := p.Applied(ctx)
		if err != nil {
			return nil, err
		}
		ps := store.PartStatus{Part: p.Name, Version: newest}
		for _, mg := range ms {
			at, ok := applied[mg.Version]
			ps.Migrations = append(ps.Migrations, store.MigrationState{Version: mg.Version, Name: mg.Name, Applied: ok, AppliedAt: at})
		}
		out = append(out, ps)
	}
	return out, nil
}

func (m *Migrator) lock(ctx context.Context) (func(), error) {
	if m.Lock == nil {
		return func() {}, nil
	}
	return m.Lock(ctx)
}

func (m *Migrator) provider(p Part) (*goose.Provider, error) {
	return goose.NewProvider(p.Dialect, p.DB, m.FS, goose.WithTableName(p.Table))
}

// Up applies, in each part, the migrations up to version to (0: all).
// A part a newer binary migrated is left as it is.
func (m *Migrator) Up(ctx context.Context, to int64, done func(store.MigrationRun)) error {
	latest := m.Latest()
	if to <= 0 || to > latest {
		to = latest
	}
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	for _, p := range m.Parts {
		_, have, err := p.Applied(ctx)
		if err != nil {
			return err
		}
		if have < to {
			if p.Prepare != nil {
				if err := p.Prepare(ctx); err != nil {
					return fmt.Errorf("%s: %w", p.Name, err)
				}
			}
			prov, err := m.provider(p)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, err)
			}
			res, err := prov.UpTo(ctx, to)
			report(p.Name, res, err, done)
			if err != nil {
				return fmt.Errorf("%s: %w", p.Name, unwrap(err))
			}
			have = to
		}
		if have >= FillFrom && p.Fill != nil {
			if err := p.Fill(ctx); err != nil {
				return fmt.Errorf("%s: name keys: %w", p.Name, err)
			}
		}
	}
	return nil
}

// Down rolls back, in each part, every migration above version to. It
// refuses (changing nothing) a part a newer binary migrated: this binary
// does not hold the Down of what it does not know.
func (m *Migrator) Down(ctx context.Context, to int64, done func(store.MigrationRun)) error {
	unlock, err := m.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	latest := m.Latest()
	haves := make([]int64, len(m.Parts))
	for i, p := range m.Parts {
		_, have, err := p.Applied(ctx)
		if err != nil {
			return err
		}
		if have > latest {
			return &store.SchemaVersionError{Part: p.Name, Have: have, Want: latest}
		}
		haves[i] = have
	}
	for i, p := range m.Parts {
		if haves[i] <= to {
			continue
		}
		prov, err := m.provider(p)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
		res, err := prov.DownTo(ctx, to)
		report(p.Name, res, err, done)
		if err != nil {
			return fmt.Errorf("%s: %w", p.Name, unwrap(err))
		}
	}
	return nil
}

// report tells done of each migration run, those before a failure included.
func report(part string, res []*goose.MigrationResult, err error, done func(store.MigrationRun)) {
	var partial *goose.PartialError
	if errors.As(err, &partial) {
		res = partial.Applied
	}
	if done == nil {
		return
	}
	for _, r := range res {
		done(store.MigrationRun{Part: part, Version: r.Source.Version, Name: path.Base(r.Source.Path),
			Up: r.Direction == "up", Duration: r.Duration})
	}
}

// unwrap keeps the failed migration's name and the database's error, not
// goose's framing around them.
func unwrap(err error) error {
	var partial *goose.PartialError
	if errors.As(err, &partial) && partial.Failed != nil {
		return fmt.Errorf("migration %s (%s) failed: %w", path.Base(partial.Failed.Source.Path), partial.Failed.Direction, partial.Err)
	}
	return err
}
