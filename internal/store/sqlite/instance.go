package sqlite

// Instances (issue 18). Nothing keeps two processes from opening one data
// directory (WAL and busy_timeout let them share it: a tool such as
// `hsrcpay-server bootstrap` beside a running server, or, by mistake, two
// servers), so a restarted server cannot simply take every claim it did
// not make for dead. Each open Store is an instance instead: a random id,
// and a lock file DIR/instances/<id>.lock that the Store holds (flock,
// exclusive) from Open to Close. The kernel drops the lock when the process
// ends, however it ends (kill -9 included), so "the file is missing or
// nobody holds its lock" is exact: that instance is gone, and its claims in
// progress died with it (store.Tx.IdempotencyHolderGone). Where flock does
// not exist (instance_other.go) no instance is ever known to be gone, and
// claims die with their leases only, as on PostgreSQL.

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"path/filepath"
)

// instancesDir is the lock files' directory inside the data directory.
const instancesDir = "instances"

// instance is this Store's: its id and the lock file it holds.
type instance struct {
	id  string
	dir string // DIR/instances
	// release drops the lock and removes the file (Close): a Store closed
	// cleanly has drained its requests, and a file left by one that died
	// is as good as none.
	release func() error
	// lock is the lock file, held open (and locked) until release.
	lock *os.File
}

func newInstanceID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// validInstanceID: what a holder read from the database may name before it
// becomes part of a path (32 lower-case hex digits, as newInstanceID makes).
func validInstanceID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func lockPath(dir, id string) string { return filepath.Join(dir, id+".lock") }

// Instance implements store.Instanced: the id this Store's idempotency
// claims carry as their holder.
func (s *Store) Instance() string { return s.inst.id }

// holderGone reports whether holder, another instance of this directory,
// has ended. Its own instance and ids it cannot judge (empty, malformed)
// are alive: only a lease tells then.
func (in *instance) holderGone(holder string) (bool, error) {
	if holder == in.id || !validInstanceID(holder) {
		return false, nil
	}
	return lockGone(lockPath(in.dir, holder))
}
