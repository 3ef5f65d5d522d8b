package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// backupEnv lets the test's writers and checks run at full speed: the
// budgets are not what is tested here.
var backupEnv = []string{
	"HSRCPAY_RATE_LIMIT_LIVE=100000", "HSRCPAY_RATE_LIMIT_TEST=100000",
	"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE=100000", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST=100000",
}

// Phases of the backup, as the writers see them.
const (
	beforeBackup int32 = iota
	duringBackup
	afterBackup
)

// ackedKey is a key a writer created: its secret, and the phase when its
// request left and when its 201 came back.
type ackedKey struct {
	id, secret, mode string
	sent, acked      int32
}

// managedSecrets bootstraps account in both modes with the binary and
// returns the managed secret key of each mode.
func managedSecrets(t *testing.T, env []string, account string) map[string]managedKey {
	t.Helper()
	code, out, errOut := runBinary(t, env, "bootstrap", "--account", account)
	if code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, errOut)
	}
	var res struct {
		Keys []managedKey `json:"keys"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	keys := map[string]managedKey{}
	for _, k := range res.Keys {
		if k.Type == "SECRET" {
			keys[k.Mode] = k
		}
	}
	if len(keys) != 2 {
		t.Fatalf("bootstrap printed %s", out)
	}
	return keys
}

// load is writers creating keys in both modes through the Go client, each
// key named by its writer and number, until stopped. Any failed create
// fails the test: a backup must not disturb the server.
type load struct {
	phase    atomic.Int32
	stop     chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup
	mu       sync.Mutex
	acked    []ackedKey
}

func startLoad(t *testing.T, base, account string, managed map[string]managedKey) *load {
	t.Helper()
	l := &load{stop: make(chan struct{})}
	for w := range 4 {
		mode := []string{"live", "test"}[w%2]
		c, err := client.New(base, managed[mode].Secret)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				sent := l.phase.Load()
				k, err := c.CreateAPIKey(context.Background(), account, client.CreateAPIKeyRequest{
					Name:        fmt.Sprintf("load %d-%d", w, i),
					Permissions: client.Permissions{"account:api:key": {"verify"}},
				})
				if err != nil {
					t.Errorf("writer %d: create %d (%s): %v", w, i, mode, err)
					return
				}
				a := ackedKey{id: k.ID, secret: k.Key, mode: mode, sent: sent, acked: l.phase.Load()}
				l.mu.Lock()
				l.acked = append(l.acked, a)
				l.mu.Unlock()
			}
		}()
	}
	// If the test ends early, the writers end with it.
	t.Cleanup(func() { l.end() })
	return l
}

// await waits until n keys whose request left in phase p are acknowledged.
func (l *load) await(t *testing.T, p int32, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		l.mu.Lock()
		got := 0
		for _, k := range l.acked {
			if k.sent == p {
				got++
			}
		}
		l.mu.Unlock()
		if got >= n {
			return
		}
		if time.Now().After(deadline) || t.Failed() {
			t.Fatalf("%d keys acknowledged in phase %d, want %d", got, p, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// end stops the writers and returns every key acknowledged.
func (l *load) end() []ackedKey {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ackedKey(nil), l.acked...)
}

// checkRestored checks the keys against a server on the restored store:
// every key acknowledged before the backup started authenticates with its
// own secret (it calls verify on itself); every key whose request left
// after the backup finished is absent (404 to the managed key, and its
// secret is refused); any other key is either absent or whole (found and
// authenticates).
func checkRestored(t *testing.T, base string, managed map[string]managedKey, keys []ackedKey) (present, absent int) {
	t.Helper()
	ctx := context.Background()
	admins := map[string]*client.Client{}
	for mode, k := range managed {
		c, err := client.New(base, k.Secret)
		if err != nil {
			t.Fatal(err)
		}
		admins[mode] = c
	}
	for _, k := range keys {
		_, err := admins[k.mode].GetAPIKey(ctx, k.id)
		found := err == nil
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("get %s: %v", k.id, err)
		}
		self, err := client.New(base, k.secret)
		if err != nil {
			t.Fatal(err)
		}
		v, verr := self.VerifyKey(ctx, k.secret)
		works := verr == nil && v.Valid && v.ID == k.id
		if verr != nil && !errors.Is(verr, client.ErrUnauthorized) {
			t.Fatalf("verify %s with itself: %v", k.id, verr)
		}
		switch {
		case k.acked == beforeBackup && (!found || !works):
			t.Errorf("%s (%s), acknowledged before the backup started: found %v, authenticates %v (%v)", k.id, k.mode, found, works, verr)
		case k.sent == afterBackup && (found || works):
			t.Errorf("%s (%s), created after the backup finished: found %v, authenticates %v", k.id, k.mode, found, works)
		case found != works:
			t.Errorf("%s (%s): found %v but authenticates %v (%v): half a key", k.id, k.mode, found, works, verr)
		}
		if found {
			present++
		} else {
			absent++
		}
	}
	return present, absent
}

// privateTree checks that dir is 0700 and holds exactly names, each a 0600
// file.
func privateTree(t *testing.T, dir string, names ...string) {
	t.Helper()
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("%s: mode %v, want 0700", dir, fi.Mode().Perm())
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if !info.Mode().IsRegular() || info.Mode().Perm() != 0o600 {
			t.Errorf("%s/%s: mode %v, want a 0600 file", dir, e.Name(), info.Mode())
		}
	}
	if strings.Join(got, " ") != strings.Join(names, " ") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// TestBackupUnderWriteLoadRestores: a backup taken with the binary while a
// server on SQLite creates keys in both modes as fast as four clients ask,
// restored with the binary into a new data directory, serves every key
// acknowledged before the backup started, none whose request left after it
// finished, and only whole keys in between; every audit chain verifies. The
// server kept serving: no create failed during the backup.
func TestBackupUnderWriteLoadRestores(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	work := t.TempDir()
	data, backup, restored := filepath.Join(work, "data"), filepath.Join(work, "backup"), filepath.Join(work, "restored")
	env := append([]string{"HSRCPAY_DATABASE_URL=sqlite:" + data}, backupEnv...)
	managed := managedSecrets(t, env, "acct_backup")
	srv, base, _ := startServer(t, env...)

	l := startLoad(t, base, "acct_backup", managed)
	l.await(t, beforeBackup, 40)
	l.phase.Store(duringBackup)
	code, out, errOut := runBinary(t, env, "backup", "--to", backup)
	l.phase.Store(afterBackup)
	if code != 0 {
		t.Fatalf("backup: exit %d: %s", code, errOut)
	}
	l.await(t, afterBackup, 40)
	keys := l.end()
	if t.Failed() {
		t.FailNow()
	}
	wantAll(t, "backup stdout", string(out), "live: "+filepath.Join(backup, "live.db"), "test: "+filepath.Join(backup, "sandbox.db"), "schema version")
	// The key file is named, and not copied.
	wantAll(t, "backup stderr", errOut, "idempotency key file "+data+".idempotency.key")
	privateTree(t, backup, "live.db", "sandbox.db")
	// No partial directory is left beside it.
	var beside []string
	ents, err := os.ReadDir(work)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		beside = append(beside, e.Name())
	}
	if got := strings.Join(beside, " "); got != "backup data data.idempotency.key" {
		t.Errorf("beside the backup: %s", got)
	}
	// The old server is gone (as after a disaster): only the backup is left.
	_ = srv.Process.Kill()
	_ = srv.Wait() // killed: the error says so

	renv := append([]string{"HSRCPAY_DATABASE_URL=sqlite:" + restored}, backupEnv...)
	code, out, errOut = runBinary(t, renv, "restore", "--from", backup)
	if code != 0 {
		t.Fatalf("restore: exit %d: %s", code, errOut)
	}
	wantAll(t, "restore stdout", string(out), filepath.Join(restored, "live.db"), filepath.Join(restored, "sandbox.db"))
	wantAll(t, "restore stderr", errOut, "no idempotency key file at "+restored+".idempotency.key")
	privateTree(t, restored, "live.db", "sandbox.db")
	// A second restore over it refuses, writing nothing.
	if code, _, errOut := runBinary(t, renv, "restore", "--from", backup); code != 1 || !strings.Contains(errOut, "exists") {
		t.Fatalf("restore over a database: exit %d, stderr %q", code, errOut)
	}

	_, rbase, _ := startServer(t, renv...)
	present, absent := checkRestored(t, rbase, managed, keys)
	var phases [3][3]int // [sent][acked]
	for _, k := range keys {
		phases[k.sent][k.acked]++
	}
	t.Logf("%d keys acknowledged (%d before the backup, %d sent or acknowledged during it, %d sent after it): %d restored, %d absent",
		len(keys), phases[0][0], phases[0][1]+phases[0][2]+phases[1][1]+phases[1][2], phases[2][2], present, absent)
	code, out, errOut = runBinary(t, renv, "audit", "verify")
	if code != 0 || !strings.Contains(string(out), "audit chains intact") {
		t.Fatalf("audit verify on the restored store: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}

// TestBackupPostgresProcedure: backup on a PostgreSQL URL writes nothing and
// prints the procedure (exit 2); the procedure, run as printed (its
// pg_dump, pg_restore and audit verify lines, through sh), carries every
// key of a database a server is writing into a fresh database, where a
// server on it authenticates them and every audit chain verifies.
func TestBackupPostgresProcedure(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	for _, tool := range []string{"pg_dump", "pg_restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("HSRCPAY_REQUIRE_POSTGRES") == "1" {
				t.Fatalf("HSRCPAY_REQUIRE_POSTGRES=1 but %s is not on PATH: %v", tool, err)
			}
			t.Skipf("%s is not on PATH", tool)
		}
	}
	src, dst := storetest.FreshPostgresDB(t), storetest.FreshPostgresDB(t)
	work := t.TempDir()
	env := append([]string{"HSRCPAY_DATABASE_URL=" + src}, backupEnv...)

	code, out, help := runBinary(t, env, "backup", "--to", filepath.Join(work, "nothing"))
	if code != 2 || len(out) != 0 {
		t.Fatalf("backup on PostgreSQL: exit %d, stdout %q, stderr %q", code, out, help)
	}
	if _, err := os.Stat(filepath.Join(work, "nothing")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("backup on PostgreSQL wrote %s (%v)", filepath.Join(work, "nothing"), err)
	}
	wantAll(t, "backup on PostgreSQL", help, "pg_dump --format=custom --schema=hsrcpay_live --schema=hsrcpay_test", "pg_restore", "audit verify")
	// The procedure's command lines, as printed (a line ending in \ goes on).
	var cmds []string
	for line := range strings.SplitSeq(help, "\n") {
		line = strings.TrimSpace(line)
		switch {
		case len(cmds) > 0 && strings.HasSuffix(cmds[len(cmds)-1], `\`):
			cmds[len(cmds)-1] += "\n" + line
		case strings.HasPrefix(line, "pg_dump "), strings.HasPrefix(line, "pg_restore "), strings.HasPrefix(line, "HSRCPAY_DATABASE_URL="):
			cmds = append(cmds, line)
		}
	}
	if len(cmds) != 3 {
		t.Fatalf("want the pg_dump, pg_restore and audit verify lines, got %q", cmds)
	}

	managed := managedSecrets(t, env, "acct_pgbackup")
	srv, base, _ := startServer(t, env...)
	l := startLoad(t, base, "acct_pgbackup", managed)
	l.await(t, beforeBackup, 20)
	l.phase.Store(duringBackup)
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	sh := func(line string) {
		t.Helper()
		line = strings.ReplaceAll(line, "postgres://…/hsrcpay_restored", dst)
		line = strings.ReplaceAll(line, "hsrcpay-server ", bin+" ")
		cmd := exec.CommandContext(context.Background(), "sh", "-c", line)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), env...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
	}
	sh(cmds[0]) // pg_dump, while the writers write
	l.phase.Store(afterBackup)
	l.await(t, afterBackup, 20)
	keys := l.end()
	if t.Failed() {
		t.FailNow()
	}
	_ = srv.Process.Kill()
	_ = srv.Wait() // killed: the error says so

	sh(cmds[1]) // pg_restore into the fresh database
	sh(cmds[2]) // audit verify on it: exit 0
	_, rbase, _ := startServer(t, append([]string{"HSRCPAY_DATABASE_URL=" + dst}, backupEnv...)...)
	present, absent := checkRestored(t, rbase, managed, keys)
	t.Logf("%d keys acknowledged: %d restored, %d absent", len(keys), present, absent)
}
