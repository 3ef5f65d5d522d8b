//go:build unix

package postgres_test

import (
	"context"
	"testing"

	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// BenchmarkReads is the read operations (lists, audit page, one key) on
// PostgreSQL: see storetest.BenchReads. cpu-ns/op is this process's CPU,
// not the PostgreSQL server's.
func BenchmarkReads(b *testing.B) {
	st, err := postgres.Open(context.Background(), storetest.FreshPostgresDB(b))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the pool
	storetest.BenchReads(b, st, func(b *testing.B) func() {
		start := cputime.Process()
		return func() { cputime.Report(b, start) }
	})
}
