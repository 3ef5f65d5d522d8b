package postgres_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"

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

func TestConformance(t *testing.T) {
	storetest.PostgresURL(t) // skip (or fail) once, not in every subtest
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, storetest.FreshPostgresDB(t))
	})
}

// TestSchemas checks that each mode has its own schema and its own goose
// version table, and that opening again (a restart) migrates nothing twice.
func TestSchemas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	s := open(t, url)
	defer s.Close()
	ctx := t.Context()
	for _, m := range apikey.Modes {
		schema := postgres.Schemas[m]
		for _, table := range []string{"accounts", "api_keys", "goose_db_version"} {
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
	defer s2.Close()
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
		stores[i].Close()
	}
}

// TestOpenBadURL fails cleanly.
func TestOpenBadURL(t *testing.T) {
	if _, err := postgres.Open(t.Context(), "postgres://127.0.0.1:1/nothing?connect_timeout=2"); err == nil {
		t.Fatal("Open of an unreachable server succeeded")
	}
}
