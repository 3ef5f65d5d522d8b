package redact

import (
	"log/slog"
	"testing"
	"time"
)

// FuzzMayHoldToken: text mayHoldToken lets through unscanned has no span the
// full scan would replace.
func FuzzMayHoldToken(f *testing.F) {
	for _, s := range []string{"", "sk_test_abc", "pk_x", "a.b.c", "eyJhbGciOiJub25lIn0.e30.x", "sk%5Ftest", "%2e%2E", "k_", "127.0.0.1",
		"req_0123456789abcdef01234567", "/v1/api-keys/{id}/regenerate", "x.eyJ.y", "s\u212ak_",
		"192.0.2.1", "eyJ.a.", "ewo.a.b", "x-eyA.b.c", "abcdefghij.abcdefghij.", "abcdefghi.abcdefghij.x", "1.2.3.4.5.6"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !mayHoldToken(s) && (len(keySpans(s, nil)) > 0 || len(jwtSpans(s, nil)) > 0) {
			t.Fatalf("%q holds a token the fast path lets through", s)
		}
	})
}

// TestHandlerFastPath: a record with nothing to replace is handed on as it
// came (not copied); one with a token, or with a value only the slow path
// can judge, is not.
func TestHandlerFastPath(t *testing.T) {
	rec := func(attrs ...any) slog.Record {
		r := slog.NewRecord(time.Now(), slog.LevelInfo, "request", 0)
		r.Add(attrs...)
		return r
	}
	for _, tc := range []struct {
		rec  slog.Record
		want bool
	}{
		{rec("request_id", "req_0123456789abcdef01234567", "status", 401, "duration_ms", 0.5, "client_ip", "127.0.0.1",
			"path", "/v1/api-keys/{id}", "g", slog.GroupValue(slog.String("x", "y")), "d", time.Second, "ok", true), true},
		{rec("path", "/v1/sk_test_abc"), false},
		{rec("g", slog.GroupValue(slog.String("x", "pk_live_abc"))), false},
		{rec("err", errString("e")), false},
		{rec("any", []int{1}), false},
		{slog.NewRecord(time.Now(), slog.LevelInfo, "bad sk_test_abc", 0), false},
	} {
		if got := clean(tc.rec); got != tc.want {
			t.Errorf("clean(%v) = %v, want %v", tc.rec, got, tc.want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }
