//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// holdInstance makes a new instance of the data directory dir and takes its
// lock file. The file is created and locked under a name nobody else knows
// yet (the id is new), so no other process can judge it gone meanwhile.
func holdInstance(dir string) (*instance, error) {
	in := &instance{id: newInstanceID(), dir: filepath.Join(dir, instancesDir)}
	// 0700 and 0600 as every directory and file the store makes (sqlite.Open).
	if err := os.MkdirAll(in.dir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: instance lock directory: %w", err)
	}
	path := lockPath(in.dir, in.id)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // inside the operator's data directory, a name of our own
	if err != nil {
		return nil, fmt.Errorf("sqlite: instance lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("sqlite: instance lock %s: %w", path, err)
	}
	in.lock = f
	in.release = func() error {
		// Removed while still locked: nobody sees it unlocked and present.
		err := os.Remove(path)
		return errors.Join(err, f.Close())
	}
	return in, nil
}

// lockGone: the lock file at path is missing, or nobody holds its lock (its
// holder's process ended: the kernel released the lock with it).
func lockGone(path string) (bool, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // an instance's lock file, its id checked (validInstanceID)
	if errors.Is(err, fs.ErrNotExist) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("sqlite: instance lock %s: %w", path, err)
	}
	// Closing drops a lock taken below.
	defer func() { _ = f.Close() }()
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		// Gone: the file goes too (while locked, so nobody sees it present
		// and unlocked meanwhile); missing says the same from now on.
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return false, fmt.Errorf("sqlite: instance lock %s: %w", path, err)
		}
		return true, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		return false, nil
	default:
		return false, fmt.Errorf("sqlite: instance lock %s: %w", path, err)
	}
}
