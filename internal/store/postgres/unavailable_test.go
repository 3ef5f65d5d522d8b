package postgres

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hsrcpay/apikeys/internal/store"
)

// What the server answers 503 for, and what it must not: a client that
// hung up mid-query is not a store outage (the load test saw every
// abandoned PostgreSQL request counted as one).
func TestUnavailableClassification(t *testing.T) {
	closed := &net.OpError{Op: "read", Net: "tcp", Err: net.ErrClosed}
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"refused", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true},
		{"connection closed", fmt.Errorf("query: %w", closed), true},
		{"store deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"admin shutdown", &pgconn.PgError{Code: "57P01"}, true},
		{"disk full", &pgconn.PgError{Code: "53100"}, true},
		{"unique violation", &pgconn.PgError{Code: "23505"}, false},
		{"caller cancelled", fmt.Errorf("query: %w", context.Canceled), false},
		{"caller cancelled, connection closed to interrupt", errors.Join(context.Canceled, closed), false},
	} {
		if got := errors.Is(unavailable(c.err), store.ErrUnavailable); got != c.want {
			t.Errorf("%s: unavailable = %v, want %v", c.name, got, c.want)
		}
	}
}
