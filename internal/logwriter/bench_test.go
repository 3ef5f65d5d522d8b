//go:build unix

package logwriter_test

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/hsrcpay/apikeys/internal/cputime"
	"github.com/hsrcpay/apikeys/internal/logwriter"
)

// BenchmarkAccessLogLine is one access-log line through slog's JSON handler
// into a file, from parallel goroutines (requests): straight to the file, as
// before, and through a Writer.
func BenchmarkAccessLogLine(b *testing.B) {
	for _, tc := range []struct {
		name string
		wrap func(io.Writer) (io.Writer, func())
	}{
		{"direct", func(f io.Writer) (io.Writer, func()) { return f, func() {} }},
		{"logwriter", func(f io.Writer) (io.Writer, func()) {
			w := logwriter.New(f)
			return w, func() { _ = w.Close() }
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer func() { _ = f.Close() }() // a temp file, read by no one
			w, done := tc.wrap(f)
			log := slog.New(slog.NewJSONHandler(w, nil))
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			b.SetParallelism(16) // 32 goroutines on 2 cores, like the load test's connections
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					log.Info("request", "request_id", "req_0123456789abcdef01234567", "method", "POST",
						"path", "/v1/api-keys/", "status", 401, "duration_ms", 0.123, "client_ip", "127.0.0.1",
						"operation", "createApiKey", "auth_failure", "checksum")
				}
			})
			done()
		})
	}
}
