package storetest

import (
	"context"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Raw is direct SQL on a mode's database, which a store's test entry adds to
// the store it opens: for the tests that look at or change rows behind the
// store's back (a NULL hint, an audit row edited or deleted by hand).
// Queries name tables unqualified and use ? placeholders.
type Raw interface {
	store.Store
	// Exec runs a statement and returns how many rows it changed.
	Exec(ctx context.Context, mode apikey.Mode, query string, args ...any) (int64, error)
	// QueryInt runs a query that returns one integer.
	QueryInt(ctx context.Context, mode apikey.Mode, query string, args ...any) (int64, error)
}

func raw(t *testing.T, s store.Store) Raw {
	t.Helper()
	r, ok := s.(Raw)
	if !ok {
		t.Fatalf("the store under test (%T) does not implement storetest.Raw: wrap it in the test entry", s)
	}
	return r
}

func mustExec(t *testing.T, s store.Store, mode apikey.Mode, want int64, query string, args ...any) {
	t.Helper()
	n, err := raw(t, s).Exec(t.Context(), mode, query, args...)
	if err != nil || n != want {
		t.Fatalf("%s: %d rows, %v; want %d rows", query, n, err, want)
	}
}

func mustQueryInt(t *testing.T, s store.Store, mode apikey.Mode, query string, args ...any) int64 {
	t.Helper()
	n, err := raw(t, s).QueryInt(t.Context(), mode, query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
