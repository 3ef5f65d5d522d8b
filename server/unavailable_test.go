package server_test

// Failures that tell the truth: a store that is unreachable, frozen or full
// answers 503 (50300) with Retry-After, not 500, and comes back by itself.
// The faults are real: a TCP proxy in front of PostgreSQL that the test stops
// or freezes, and a small tmpfs that fills up under SQLite.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// pgBehindProxy opens a fresh PostgreSQL database through a fault proxy
// (skipping when PostgreSQL is not reachable, as every PostgreSQL test).
func pgBehindProxy(t *testing.T, query string) (store.Store, *faultProxy, string) {
	t.Helper()
	u, err := url.Parse(storetest.FreshPostgresDB(t))
	if err != nil {
		t.Fatal(err)
	}
	p := newFaultProxy(t, u.Host)
	u.Host = p.Addr
	if query != "" {
		q := u.Query()
		extra, _ := url.ParseQuery(query)
		for k, v := range extra {
			q[k] = v
		}
		u.RawQuery = q.Encode()
	}
	st, err := postgres.Open(ctx, u.String())
	if err != nil {
		t.Fatalf("open postgres through the proxy: %v", err)
	}
	return st, p, u.Path[1:]
}

// envRequireTmpfs=1 (CI, which runs as root) turns "cannot mount a tmpfs"
// from a skip into a failure, so the full-disk tests cannot vanish there.
const envRequireTmpfs = "HSRCPAY_REQUIRE_TMPFS"

// sqliteOnTmpfs opens SQLite on a tmpfs of size bytes, which a test can fill;
// it skips unless the test may mount one (root), or fails when
// HSRCPAY_REQUIRE_TMPFS=1.
func sqliteOnTmpfs(t *testing.T, size int) (*sqlite.Store, string) {
	t.Helper()
	noTmpfs := func(why string) {
		t.Helper()
		if os.Getenv(envRequireTmpfs) == "1" {
			t.Fatalf("%s and %s=1: failing", why, envRequireTmpfs)
		}
		t.Skipf("%s: skipping (%s=1 to fail instead)", why, envRequireTmpfs)
	}
	if os.Geteuid() != 0 {
		noTmpfs("a full disk is simulated with a small tmpfs, and mounting one needs root")
	}
	dir := t.TempDir()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		noTmpfs(fmt.Sprintf("cannot mount a tmpfs (%v)", err))
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	st, err := sqlite.Open(ctx, filepath.Join(dir, "data"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return st, dir
}

// fillDisk writes a file in dir until the file system is full, and returns
// a function that removes it.
func fillDisk(t *testing.T, dir string) func() {
	t.Helper()
	name := filepath.Join(dir, "filler")
	f, err := os.Create(name) //nolint:gosec // a file in the test's own tmpfs
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			break
		}
	}
	_ = f.Close() // the disk is full: whatever Close says, the space is taken
	return func() {
		if err := os.Remove(name); err != nil {
			t.Fatal(err)
		}
	}
}

// wantUnavailable checks err is the 503 envelope: code 50300, Retry-After,
// and no claim that the change may have been made.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	var ce *client.Error
	if !errors.As(err, &ce) {
		t.Errorf("%s: %v, want a 503 answer", what, err)
		return
	}
	if ce.StatusCode != http.StatusServiceUnavailable || ce.Code != client.CodeStoreUnavailable {
		t.Errorf("%s: %d %d %q, want 503 50300", what, ce.StatusCode, ce.Code, ce.Message)
	}
	if ce.RetryAfter < time.Second {
		t.Errorf("%s: Retry-After %v, want at least 1s", what, ce.RetryAfter)
	}
	if o, ok := ce.Details["outcome"]; ok {
		t.Errorf("%s: outcome %v, but nothing reached a commit", what, o)
	}
}

func readyzStatus(t *testing.T, env *testenv.Env) int {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.Root+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close() // the status is the answer
	return res.StatusCode
}

func newKey(name string) client.CreateAPIKeyRequest {
	return client.CreateAPIKeyRequest{Name: name, Permissions: client.Permissions{"payment": {"read"}}}
}

// eventually retries f until it succeeds or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still failing after %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStoreStopped503Postgres(t *testing.T) {
	st, proxy, dbName := pgBehindProxy(t, "")
	env := testenv.New(t, testenv.Config{Store: st})
	const acctS = "acct_pg_stopped"
	m := env.Bootstrap(acctS)[apikey.Sandbox]
	c := env.Client(m.Secret)
	k, err := c.CreateAPIKey(ctx, acctS, newKey("before"))
	if err != nil {
		t.Fatal(err)
	}

	// PostgreSQL stopped: the port refuses, open connections are reset.
	proxy.Stop()
	start := time.Now()
	_, err = c.CreateAPIKey(ctx, acctS, newKey("while stopped"))
	wantUnavailable(t, "create", err)
	t.Logf("first answer with PostgreSQL stopped after %v", time.Since(start))
	_, err = c.RegenerateAPIKey(ctx, m.PublishableID)
	wantUnavailable(t, "regenerate", err)
	_, err = c.GetAPIKey(ctx, k.ID)
	wantUnavailable(t, "get", err)
	_, err = c.ListAPIKeysPage(ctx, acctS, client.ListAPIKeysOptions{})
	wantUnavailable(t, "list", err)
	_, err = c.UpdateAPIKey(ctx, k.ID, client.Rename("renamed"))
	wantUnavailable(t, "update", err)
	_, err = c.DeleteAPIKey(ctx, k.ID)
	wantUnavailable(t, "delete", err)
	if got := readyzStatus(t, env); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with PostgreSQL stopped: %d, want 503", got)
	}

	// Back: the pool reconnects by itself.
	proxy.Start()
	eventually(t, 5*time.Second, "create after PostgreSQL came back", func() error {
		_, err := c.CreateAPIKey(ctx, acctS, newKey("after"))
		return err
	})
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Errorf("readyz with PostgreSQL back: %d, want 200", got)
	}

	// An administrator's shutdown of every session (57P01 on the next use)
	// is the store's failure too: 503 or, once the pool has replaced the
	// connection, success; never 500.
	admin := pgAdmin(t)
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_, err := c.CreateAPIKey(ctx, acctS, newKey(fmt.Sprintf("after terminate %d", i)))
		var ce *client.Error
		if err != nil && (!errors.As(err, &ce) || ce.StatusCode != http.StatusServiceUnavailable) {
			t.Errorf("create after pg_terminate_backend: %v, want success or 503", err)
		}
	}
}

func TestStoreFull503SQLite(t *testing.T) {
	st, dir := sqliteOnTmpfs(t, 8<<20)
	env := testenv.New(t, testenv.Config{Store: st})
	const acctF = "acct_full"
	m := env.Bootstrap(acctF)[apikey.Sandbox]
	c := env.Client(m.Secret)
	k, err := c.CreateAPIKey(ctx, acctF, newKey("before"))
	if err != nil {
		t.Fatal(err)
	}

	free := fillDisk(t, dir)
	// Writes fail with SQLITE_FULL: 503, nothing written. (A batch's first
	// few pages may still fit in what the WAL file already holds.)
	full := false
	for i := range 50 {
		_, err := c.CreateAPIKey(ctx, acctF, newKey(fmt.Sprintf("while full %d", i)))
		if err != nil {
			wantUnavailable(t, "create on a full disk", err)
			t.Logf("on the full disk, create %d answered %v", i+1, err)
			full = true
			break
		}
	}
	if !full {
		t.Fatal("50 creates succeeded on a full disk")
	}
	_, err = c.RegenerateAPIKey(ctx, m.PublishableID)
	wantUnavailable(t, "regenerate on a full disk", err)
	// Reads need no space.
	if _, err := c.GetAPIKey(ctx, k.ID); err != nil {
		t.Errorf("get on a full disk: %v", err)
	}

	free()
	if _, err := c.CreateAPIKey(ctx, acctF, newKey("after")); err != nil {
		t.Errorf("create once space is back: %v", err)
	}
	if _, err := c.RegenerateAPIKey(ctx, m.PublishableID); err != nil {
		t.Errorf("regenerate once space is back: %v", err)
	}
}

// A bug stays a 500: an error the store does not recognise as its own
// unavailability is not dressed up as a 503.
func TestStoreErrorUnclassified500(t *testing.T) {
	inner, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flaky := &hxFlakyStore{Store: inner}
	env := testenv.New(t, testenv.Config{Store: flaky})
	const acctB = "acct_bug"
	m := env.Bootstrap(acctB)[apikey.Sandbox]
	flaky.state.Store(hxWritesDown)
	_, err = env.Client(m.Secret).CreateAPIKey(ctx, acctB, newKey("bug"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != 500 || ce.Code != client.CodeInternal || ce.RetryAfter != 0 {
		t.Errorf("create with an unclassified store error: %v, want a plain 500", err)
	}
}

// Readiness says whether the store accepts writes: a full disk makes it 503
// without any API traffic (the probe write), and a failed write at once.
func TestReadyzWritesSQLite(t *testing.T) {
	st, dir := sqliteOnTmpfs(t, 8<<20)
	env := testenv.New(t, testenv.Config{Store: st})
	const acctR = "acct_ready"
	m := env.Bootstrap(acctR)[apikey.Sandbox]
	c := env.Client(m.Secret)
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Fatalf("readyz: %d", got)
	}
	free := fillDisk(t, dir)
	start := time.Now()
	eventually(t, 10*time.Second, "readyz 503 on a full disk", func() error {
		if got := readyzStatus(t, env); got != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz %d", got)
		}
		return nil
	})
	t.Logf("disk full, no traffic: readyz 503 after %v", time.Since(start))
	free()
	eventually(t, 10*time.Second, "readyz 200 once space is back", func() error {
		if got := readyzStatus(t, env); got != http.StatusOK {
			return fmt.Errorf("readyz %d", got)
		}
		return nil
	})
	// A write refused for lack of space is noticed at once, probe or not.
	free = fillDisk(t, dir)
	for i := 0; ; i++ {
		_, err := c.CreateAPIKey(ctx, acctR, newKey(fmt.Sprintf("full %d", i)))
		if err != nil {
			wantUnavailable(t, "create on a full disk", err)
			break
		}
		if i == 50 {
			t.Fatal("50 creates succeeded on a full disk")
		}
	}
	if got := readyzStatus(t, env); got != http.StatusServiceUnavailable {
		t.Errorf("readyz right after a write failed for lack of space: %d, want 503", got)
	}
	free()
	if _, err := c.CreateAPIKey(ctx, acctR, newKey("after")); err != nil {
		t.Fatal(err)
	}
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Errorf("readyz right after a write succeeded: %d, want 200", got)
	}
}

// PostgreSQL that only reads (a database switched to read-only, as during a
// failover): writes answer 503 and readiness says so, while reads work.
func TestReadyzReadOnlyPostgres(t *testing.T) {
	st, _, dbName := pgBehindProxy(t, "")
	env := testenv.New(t, testenv.Config{Store: st})
	const acctRO = "acct_pg_ro"
	m := env.Bootstrap(acctRO)[apikey.Sandbox]
	c := env.Client(m.Secret)
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Fatalf("readyz: %d", got)
	}
	admin := pgAdmin(t)
	setRO := func(on bool) {
		t.Helper()
		if _, err := admin.Exec(ctx, fmt.Sprintf(`ALTER DATABASE %q SET default_transaction_read_only = %v`, dbName, on)); err != nil {
			t.Fatal(err)
		}
		// Sessions read the setting when they start: end the pool's.
		if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`, dbName); err != nil {
			t.Fatal(err)
		}
	}
	setRO(true)
	defer setRO(false)
	eventually(t, 10*time.Second, "create refused on a read-only database", func() error {
		_, err := c.CreateAPIKey(ctx, acctRO, newKey("read-only"))
		var ce *client.Error
		if errors.As(err, &ce) && ce.StatusCode == http.StatusServiceUnavailable {
			return nil
		}
		return fmt.Errorf("create: %w", err)
	})
	// The create's 503 may have come from its key lookup on a terminated
	// session; the write itself, or else the probe, shows the store read-only.
	eventually(t, 10*time.Second, "readyz 503 on a read-only database", func() error {
		if got := readyzStatus(t, env); got != http.StatusServiceUnavailable {
			return fmt.Errorf("readyz %d", got)
		}
		return nil
	})
	if _, err := c.GetAPIKey(ctx, m.PublishableID); err != nil {
		t.Errorf("get on a read-only database: %v", err)
	}
	setRO(false)
	eventually(t, 10*time.Second, "create once writable again", func() error {
		_, err := c.CreateAPIKey(ctx, acctRO, newKey("writable"))
		return err
	})
	if got := readyzStatus(t, env); got != http.StatusOK {
		t.Errorf("readyz once writable again: %d, want 200", got)
	}
}

// pgAdmin is a plain connection to the PostgreSQL the tests are given, to
// end sessions or set a database read-only. Not postgres.Open: that would
// migrate the shared database itself, leaving the service's schemas in it.
func pgAdmin(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(ctx, storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}
