//go:build unix

package sqlite_test

import (
	"context"
	"testing"

	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// BenchmarkReads is the read operations (lists, audit page, one key) on
// SQLite: see storetest.BenchReads.
func BenchmarkReads(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
	storetest.BenchReads(b, st, func(b *testing.B) func() {
		start := cputime.Process()
		return func() { cputime.Report(b, start) }
	})
}

// BenchmarkReadsBounded is BenchmarkReads as the server calls the store:
// through store.WithTimeout, so every read gets a context with a deadline
// (what database/sql and the driver watch for cancellation).
func BenchmarkReadsBounded(b *testing.B) {
	st, err := sqlite.Open(context.Background(), b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
	storetest.BenchReads(b, store.WithTimeout(st, store.DefaultTimeout), func(b *testing.B) func() {
		start := cputime.Process()
		return func() { cputime.Report(b, start) }
	})
}
