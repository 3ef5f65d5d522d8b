package sqlite

import (
	"context"
	"errors"

	sqlite3 "modernc.org/sqlite"
	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/hsrcpay/apikeys/internal/store"
)

// classify marks *errp as store.ErrUnavailable when the files could not
// serve rather than refused: every exported Repo method and Ping end with it,
// so the server needs to know no SQLite error code.
func classify(errp *error) { *errp = unavailable(*errp) }

func unavailable(err error) error {
	if err == nil || errors.Is(err, store.ErrUnavailable) {
		return err
	}
	if errors.Is(err, errClosed) || errors.Is(err, context.DeadlineExceeded) {
		return store.Unavailable(err) // shutting down; the store timeout
	}
	if primaryCode(err) >= 0 && unavailableCodes[primaryCode(err)] {
		return store.Unavailable(err)
	}
	return err
}

// unavailableCodes are the primary result codes of a database that cannot
// serve now but may later: a full disk, an I/O error, a lock held past
// busy_timeout by another process, a file that cannot be opened or written.
// SQLITE_CORRUPT is not among them: no wait fixes it.
var unavailableCodes = map[int]bool{
	sqlite3lib.SQLITE_FULL:     true,
	sqlite3lib.SQLITE_IOERR:    true,
	sqlite3lib.SQLITE_BUSY:     true,
	sqlite3lib.SQLITE_CANTOPEN: true,
	sqlite3lib.SQLITE_READONLY: true,
	sqlite3lib.SQLITE_NOMEM:    true,
	sqlite3lib.SQLITE_PROTOCOL: true,
}

// primaryCode is err's SQLite primary result code, -1 if err is none.
func primaryCode(err error) int {
	var se *sqlite3.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return -1
}

// commitFailed is what a failed COMMIT reports. SQLite rolls back a COMMIT
// that could not write the WAL (SQLITE_FULL, SQLITE_BUSY): nothing stored.
// An I/O error may strike after the commit record reached the WAL (while
// syncing it), so the outcome is then unknown.
func commitFailed(err error) error {
	if primaryCode(err) == sqlite3lib.SQLITE_IOERR {
		return store.OutcomeUnknown(err)
	}
	return err
}
