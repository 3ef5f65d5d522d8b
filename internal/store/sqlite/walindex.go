package sqlite

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
)

// walIndex reads how many frames the WAL holds from SQLite's own count: the
// mxFrame field of the wal-index header in the -shm file
// (https://sqlite.org/walformat.html, "The WAL-Index Header"). SQLite keeps
// that file mapped (MAP_SHARED), so a read of it sees what every connection
// wrote there.
//
// Why the writer asks instead of counting: a RESTART checkpoint that
// reports success only lets the next COMMIT write the WAL from its
// beginning; the COMMIT does so only if no reader then holds a read mark
// on the WAL, and a reader can take one in the moment between the
// checkpoint's last look and that COMMIT. The WAL then goes on growing
// while a count reset at the checkpoint says it is short: under heavy load
// TestWALBounded saw the WAL pass its bound so. Frames another connection
// appends (a tool on Store.DB) are in SQLite's count too.
type walIndex struct {
	path string   // the -shm file
	f    *os.File // opened at the first read, kept for the writer's life
}

// walIndexHeader is the header's size; it is stored twice, one copy after
// the other, and SQLite writes them in turn, so equal copies are a header
// no writer was changing.
const walIndexHeader = 48

// frames returns mxFrame, or false if it cannot be read (no -shm yet, a
// header being written, an unexpected version): the caller keeps its own
// count then.
func (x *walIndex) frames() (int, bool) {
	if x.f == nil {
		f, err := os.Open(x.path)
		if err != nil {
			return 0, false
		}
		x.f = f
	}
	var buf [2 * walIndexHeader]byte
	if _, err := x.f.ReadAt(buf[:], 0); err != nil {
		if !errors.Is(err, io.EOF) {
			_ = x.close() // reopened at the next read; the error only costs this one
		}
		return 0, false
	}
	// The two copies agree, iVersion 3007000 and isInit: a header SQLite has
	// written, in the format this reads. Native byte order, as SQLite writes
	// it.
	if !bytes.Equal(buf[:walIndexHeader], buf[walIndexHeader:]) || binary.NativeEndian.Uint32(buf[0:4]) != 3007000 || buf[12] != 1 { //nolint:gosec // G602: buf is an array of 2*walIndexHeader (48) bytes
		return 0, false
	}
	return int(binary.NativeEndian.Uint32(buf[16:20])), true
}

func (x *walIndex) close() error {
	if x.f == nil {
		return nil
	}
	err := x.f.Close()
	x.f = nil
	return err
}
