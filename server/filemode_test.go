package server_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// Issue 17 (class 8): in an operator's 0755 directory and under umask 022,
// every file the server writes is 0600 (the WAL holds every row) and every
// directory it makes 0700. Not parallel: the umask is the process's.
func TestFileModesOfData(t *testing.T) {
	old := syscall.Umask(0o022)
	t.Cleanup(func() { syscall.Umask(old) })
	parent := t.TempDir()
	if err := os.Chmod(parent, 0o755); err != nil { //nolint:gosec // an operator's volume readable by others, on purpose: the test shows the files in it stay 0600
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "data")
	st, err := sqlite.Open(ctx, dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The idempotency key file the server creates beside sqlite:DIR.
	if _, created, err := server.LoadIdempotencyKey(dir+".idempotency.key", true); err != nil || !created {
		t.Fatalf("idempotency key: created %v, %v", created, err)
	}
	env := testenv.New(t, testenv.Config{Store: st})
	for _, m := range env.Bootstrap(acct) {
		customKey(t, env, m, "file modes", client.Permissions{}, nil)
		if _, err := env.Client(m.Secret).RegenerateAPIKey(ctx, m.PublishableID); err != nil {
			t.Fatal(err)
		}
	}
	check := func(when string) {
		t.Helper()
		seen := map[string]bool{}
		err := filepath.WalkDir(parent, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == parent {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			want := fs.FileMode(0o600)
			if d.IsDir() {
				want = fs.ModeDir | 0o700
			}
			seen[filepath.Base(p)] = true
			if fi.Mode() != want {
				t.Errorf("%s: %s is %v, want %v", when, p, fi.Mode(), want)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %v", when, seen)
		if when == "running" {
			for _, f := range []string{"live.db", "live.db-wal", "live.db-shm", "sandbox.db", "sandbox.db-wal", "sandbox.db-shm", "data.idempotency.key"} {
				if !seen[f] {
					t.Errorf("%s: no %s to check", when, f)
				}
			}
		}
	}
	check("running")
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	check("stopped")
}
