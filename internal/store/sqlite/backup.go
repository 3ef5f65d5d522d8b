package sqlite

// Backups (issue 20). A data directory cannot be copied file by file while a
// server runs: live.db alone misses every row still in live.db-wal, and a
// copy of the database and its WAL taken at two moments is not a database.
// Backup asks SQLite for the copy instead, with VACUUM INTO, on a read-only
// connection of its own:
//
//   - it is one read transaction, so the copy is the database as of one
//     commit, whatever the writer commits meanwhile (WAL readers never block
//     the writer, nor the writer them), and it reads through the WAL, so
//     every committed unit is in it;
//   - it is plain SQL through database/sql, where the online backup API of
//     modernc.org/sqlite is a method of the driver's unexported connection
//     type (reached only through Conn.Raw and an interface of our own), and
//     restarts from the first page whenever another connection writes while
//     it copies in steps (copied in one step it holds a read transaction as
//     long, with no gain);
//   - its output is one compact, self-contained file in rollback-journal
//     mode (no -wal or -shm beside it), which Open turns back into WAL.
//
// The connection is opened with mode=ro: a backup can never change the
// database it copies, nor create one where none is (a mistyped directory
// fails instead of backing up two empty files).
//
// Each mode's file is its own snapshot, taken one after the other: no unit
// of work spans both files (Bootstrap of both modes is one unit per mode,
// undone on failure), so the pair is what a crash at that moment would have
// left, never half a unit.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// BackupFile is one mode's database in a backup.
type BackupFile struct {
	Mode    apikey.Mode
	Path    string // inside the backup directory
	Size    int64
	Version int64 // the last migration applied (goose), 0 if none
}

// Backup writes a consistent copy of both modes' databases in the data
// directory dataDir into the new directory to (0700; files 0600), while
// servers keep serving from dataDir. to must not exist: the copy is made
// in a directory beside it and renamed into place when both files are
// complete, synced and pass SQLite's quick_check, so a directory named to
// is always a whole backup.
func Backup(ctx context.Context, dataDir, to string) (_ []BackupFile, err error) {
	for _, m := range apikey.Modes {
		src := filepath.Join(dataDir, FileNames[m])
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("sqlite: backup: no database for mode %s: %w", m, err)
		}
	}
	if _, err := os.Lstat(to); err == nil {
		return nil, fmt.Errorf("sqlite: backup: %s exists: a backup goes into a new directory", to)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("sqlite: backup: %w", err)
	}
	parent := filepath.Dir(filepath.Clean(to))
	// MkdirTemp makes it 0700, whatever the umask.
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(to)+".partial-")
	if err != nil {
		return nil, fmt.Errorf("sqlite: backup: %w", err)
	}
	defer func() {
		if err != nil {
			_ = os.RemoveAll(tmp) // a partial copy; err is the one to report
		}
	}()
	var files []BackupFile
	for _, m := range apikey.Modes {
		name := FileNames[m]
		f := BackupFile{Mode: m, Path: filepath.Join(to, name)}
		if err := vacuumInto(ctx, filepath.Join(dataDir, name), filepath.Join(tmp, name)); err != nil {
			return nil, fmt.Errorf("sqlite: backup of %s: %w", name, err)
		}
		if f.Version, err = checkCopy(ctx, filepath.Join(tmp, name)); err != nil {
			return nil, fmt.Errorf("sqlite: backup of %s: %w", name, err)
		}
		if f.Size, err = syncFile(filepath.Join(tmp, name)); err != nil {
			return nil, fmt.Errorf("sqlite: backup of %s: %w", name, err)
		}
		files = append(files, f)
	}
	if err := syncDir(tmp); err != nil {
		return nil, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := os.Rename(tmp, to); err != nil {
		return nil, fmt.Errorf("sqlite: backup: %w", err)
	}
	if err := syncDir(parent); err != nil {
		return files, fmt.Errorf("sqlite: backup: %s is complete, but its name may not survive a power loss: %w", to, err)
	}
	return files, nil
}

// roDSN opens path read-only: never created, never written.
func roDSN(path string) string {
	return "file:" + path + fmt.Sprintf("?mode=ro&_pragma=busy_timeout(%d)", busyTimeout.Milliseconds())
}

// vacuumInto copies the database at src into the new file dst.
func vacuumInto(ctx context.Context, src, dst string) error {
	// VACUUM INTO writes into an empty file it finds: created here, 0600,
	// since SQLite would create it 0644 (less the umask).
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // inside the backup directory this call made
	if err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	db, err := sql.Open("sqlite", roDSN(src))
	if err != nil {
		return err
	}
	defer func() { _ = db.Close() }() // read-only: nothing to lose
	db.SetMaxOpenConns(1)
	_, err = db.ExecContext(ctx, `VACUUM INTO ?`, dst)
	return err
}

// checkCopy runs SQLite's quick_check on a copy and reads its schema version.
func checkCopy(ctx context.Context, path string) (int64, error) {
	db, err := sql.Open("sqlite", roDSN(path))
	if err != nil {
		return 0, err
	}
	defer func() { _ = db.Close() }() // read-only
	db.SetMaxOpenConns(1)
	var res []string
	rows, err := db.QueryContext(ctx, `PRAGMA quick_check`)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }() // closed below when read to the end
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return 0, err
		}
		res = append(res, s)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, err
	}
	if len(res) != 1 || res[0] != "ok" {
		return 0, fmt.Errorf("quick_check: %s", strings.Join(res, "; "))
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name IN ('accounts', 'api_keys', 'audit_events')`).Scan(&n); err != nil {
		return 0, err
	}
	if n != 3 {
		return 0, errors.New("not an HSRCPAY database (no accounts, api_keys and audit_events tables)")
	}
	var v sql.NullInt64
	err = db.QueryRowContext(ctx, `SELECT max(version_id) FROM goose_db_version WHERE is_applied`).Scan(&v)
	return v.Int64, err
}

func syncFile(path string) (int64, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0) //nolint:gosec // a file this package wrote
	if err != nil {
		return 0, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir) //nolint:gosec // a directory this package made or its parent
	if err != nil {
		return err
	}
	err = d.Sync()
	return errors.Join(err, d.Close())
}

// Restore puts a backup made by Backup (the directory from) into the data
// directory dataDir, which must hold no database yet (it is made 0700 if
// missing). Both files are checked (quick_check), copied beside their final
// names (0600), synced, and only then renamed into place. It refuses a
// dataDir that holds either database or any of their -wal, -shm or
// -journal files: a server may be using it, and an old WAL left beside a
// restored file would be replayed into it (the operator moves the old
// directory away first; nothing is deleted here).
func Restore(ctx context.Context, from, dataDir string) (_ []BackupFile, err error) {
	var files []BackupFile
	for _, m := range apikey.Modes {
		name := FileNames[m]
		src := filepath.Join(from, name)
		if _, err := os.Stat(src); err != nil {
			return nil, fmt.Errorf("sqlite: restore: %s is not a backup: %w", from, err)
		}
		v, err := checkCopy(ctx, src)
		if err != nil {
			return nil, fmt.Errorf("sqlite: restore: %s: %w", src, err)
		}
		files = append(files, BackupFile{Mode: m, Path: filepath.Join(dataDir, name), Version: v})
	}
	for _, m := range apikey.Modes {
		for _, suffix := range append([]string{""}, sidecars...) {
			p := filepath.Join(dataDir, FileNames[m]+suffix)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("sqlite: restore: %s exists: stop the server, move %s away and restore into an empty directory", p, dataDir)
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("sqlite: restore: %w", err)
			}
		}
	}
	// As Open: a directory made here is 0700; an existing one keeps its mode.
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("sqlite: restore: %w", err)
	}
	var tmps []string
	defer func() {
		if err != nil {
			for _, t := range tmps {
				_ = os.Remove(t) // a partial copy; err is the one to report
			}
		}
	}()
	for i, m := range apikey.Modes {
		tmp := filepath.Join(dataDir, "."+FileNames[m]+".restoring")
		// One a restore that was killed left, by name ours: it was never
		// renamed into place.
		if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("sqlite: restore: %w", err)
		}
		tmps = append(tmps, tmp)
		if files[i].Size, err = copyFile(filepath.Join(from, FileNames[m]), tmp); err != nil {
			return nil, fmt.Errorf("sqlite: restore: %w", err)
		}
	}
	for i, m := range apikey.Modes {
		if err := os.Rename(tmps[i], filepath.Join(dataDir, FileNames[m])); err != nil {
			return nil, fmt.Errorf("sqlite: restore: %w", err)
		}
	}
	if err := syncDir(dataDir); err != nil {
		return nil, fmt.Errorf("sqlite: restore: %w", err)
	}
	return files, nil
}

// copyFile copies src into the new file dst (0600) and syncs it.
func copyFile(src, dst string) (int64, error) {
	in, err := os.Open(src) //nolint:gosec // the backup the operator named
	if err != nil {
		return 0, err
	}
	defer func() { _ = in.Close() }()                                      // only read
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // inside the data directory, a name of our own
	if err != nil {
		return 0, err
	}
	n, err := io.Copy(out, in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return n, err
}
