package postgres

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/hsrcpay/apikeys/internal/store"
)

// classify marks *errp as store.ErrUnavailable when PostgreSQL could not
// serve rather than refused: every exported Repo method and Ping end with it,
// so the server needs to know no pgx error.
func classify(errp *error) { *errp = unavailable(*errp) }

func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	// The caller went away (a client that hung up): pgx then reports the
	// cancellation, often with the connection it closed to interrupt the
	// query. That says nothing about the store: no 503, and readiness
	// (which counts unavailable writes) must not drain a healthy replica
	// because clients time out.
	if errors.Is(err, context.Canceled) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case strings.HasPrefix(pe.Code, "08"), // connection_exception
			strings.HasPrefix(pe.Code, "53"),  // insufficient_resources: disk_full (53100), out_of_memory, too_many_connections
			strings.HasPrefix(pe.Code, "57P"), // admin_shutdown, crash_shutdown, cannot_connect_now, database_dropped
			pe.Code == "57014",                // query_canceled: statement_timeout
			pe.Code == "25006":                // read_only_sql_transaction: a standby, or a primary being failed over
			return store.Unavailable(err)
		}
		return err // PostgreSQL answered: a constraint, a bug, a permission
	}
	var (
		ce *pgconn.ConnectError
		ne net.Error
	)
	switch {
	case errors.As(err, &ce), errors.As(err, &ne), // refused, reset, no route, a dial or I/O timeout
		errors.Is(err, context.DeadlineExceeded), pgconn.Timeout(err), // the store timeout, a pool acquire timeout
		errors.Is(err, pgconn.ErrConnClosed), errors.Is(err, net.ErrClosed),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), // the server closed the connection
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.EPIPE):
		return store.Unavailable(err)
	}
	return err
}

// commitFailed is what a failed COMMIT reports. PostgreSQL's own answer
// (an error, e.g. a deferred constraint) means it rolled back; an error that
// struck before anything was sent means COMMIT never left. Anything else (the
// connection died or the deadline passed after COMMIT was sent) leaves the
// outcome unknown: the server may have committed and lost only the reply.
func commitFailed(err error) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) || pgconn.SafeToRetry(err) {
		return err
	}
	return store.OutcomeUnknown(err)
}
