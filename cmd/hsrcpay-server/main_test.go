package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

func TestBootstrapPrintsManagedKeysOnce(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
	var out, errb bytes.Buffer
	if code := run([]string{"bootstrap", "--account", "acct_boot"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var res struct {
		Keys []managedKey `json:"keys"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	seen := map[string]bool{}
	for _, k := range res.Keys {
		seen[k.Mode+"/"+k.Type] = true
		prefix := map[string]string{"SECRET": "sk_", "PUBLISHABLE": "pk_"}[k.Type] + map[string]string{"live": "live_", "test": "test_"}[k.Mode]
		if !strings.HasPrefix(k.Secret, prefix) || !strings.HasPrefix(k.ID, "key_") || k.AccountID != "acct_boot" {
			t.Fatalf("bad key line %+v", k)
		}
	}
	if len(res.Keys) != 4 || len(seen) != 4 {
		t.Fatalf("want one secret and one publishable key per mode, got %+v", res.Keys)
	}
	// A second bootstrap cannot show secrets again: it refuses.
	out.Reset()
	errb.Reset()
	if code := run([]string{"bootstrap", "--account", "acct_boot"}, &out, &errb); code == 0 || !strings.Contains(errb.String(), "exists") {
		t.Fatalf("second bootstrap: exit %d, stderr %q", code, errb.String())
	}
}

// The demo account (make run) exists in the sandbox only: bootstrapping it in
// both modes must refuse before writing anything, naming the mode, and leave
// the live mode to a bootstrap of its own (all or nothing across modes).
// TestRotateManaged: the operator's way to new managed secrets (after a
// leak report rotated one, whose new secret nobody saw): both managed keys of
// the mode get new secrets, printed once; the old ones and the other mode's
// are as before; an unknown account or a bad mode is refused.
func TestRotateManaged(t *testing.T) {
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
	keysOf := func(args ...string) []managedKey {
		t.Helper()
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		var res struct {
			Keys []managedKey `json:"keys"`
		}
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: output is not JSON: %v", args, err)
		}
		return res.Keys
	}
	first := keysOf("bootstrap", "--account", "acct_rot")
	rotated := keysOf("rotate-managed", "--account", "acct_rot", "--mode", "live")
	if len(rotated) != 2 {
		t.Fatalf("rotated %+v", rotated)
	}
	for _, r := range rotated {
		for _, f := range first {
			if f.ID == r.ID && (f.Secret == r.Secret || r.Mode != "live") {
				t.Fatalf("%s: not given a new live secret: %+v", r.ID, r)
			}
		}
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"rotate-managed", "--account", "acct_nobody", "--mode", "live"}, 1, "no such account"},
		{[]string{"rotate-managed", "--account", "acct_rot", "--mode", "both"}, 2, "--mode must be live or test"},
		{[]string{"rotate-managed", "--mode", "live"}, 2, "--account"},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != tc.code || !strings.Contains(errb.String(), tc.want) || out.Len() != 0 {
			t.Errorf("%v: exit %d, stderr %q, stdout %q", tc.args, code, errb.String(), out.String())
		}
	}
}

func TestBootstrapHalfMadeAccountWritesNothing(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
	var out, errb bytes.Buffer
	if code := run([]string{"bootstrap", "--account", "acct_half", "--mode", "test"}, &out, &errb); code != 0 {
		t.Fatalf("sandbox bootstrap: exit %d: %s", code, errb.String())
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"bootstrap", "--account", "acct_half"}, &out, &errb)
	if code == 0 || out.Len() != 0 || !strings.Contains(errb.String(), "exists") || !strings.Contains(errb.String(), "test") {
		t.Fatalf("bootstrap of both modes over the sandbox account: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ok, err := st.Repo(apikey.Live).AccountExists(context.Background(), "acct_half")
	_ = st.Close() // only read
	if err != nil || ok {
		t.Fatalf("the live mode was written anyway (exists=%v, err=%v)", ok, err)
	}
	out.Reset()
	if code := run([]string{"bootstrap", "--account", "acct_half", "--mode", "live"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "sk_live_") {
		t.Fatalf("live bootstrap: exit %d: %s", code, errb.String())
	}
}

// audit verify passes on the chains bootstrap wrote and names the first
// broken link once a row is edited behind the service's back.
func TestAuditVerify(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
	var out, errb bytes.Buffer
	if code := run([]string{"bootstrap", "--account", "acct_audit"}, &out, &errb); code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, errb.String())
	}
	out.Reset()
	if code := run([]string{"audit", "verify"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "4 events checked") {
		t.Fatalf("intact chains: exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
	}
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.DB(apikey.Sandbox).ExecContext(context.Background(), `UPDATE audit_events SET client_ip = '203.0.113.66' WHERE account_id = 'acct_audit' AND seq = 2`)
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	out.Reset()
	errb.Reset()
	code := run([]string{"audit", "verify"}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), "acct_audit") || !strings.Contains(errb.String(), "test") || !strings.Contains(errb.String(), "seq 2") {
		t.Fatalf("after an edit: exit %d, stderr %q", code, errb.String())
	}
	if code := run([]string{"audit"}, &out, &errb); code != 2 {
		t.Fatalf("audit without verify: exit %d, want 2", code)
	}
}

func TestBadConfigurationExitsNonZero(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{map[string]string{"HSRCPAY_DATABASE_URL": "mysql://db"}, []string{"serve"}, "HSRCPAY_DATABASE_URL"},
		{map[string]string{"HSRCPAY_ADDR": "nonsense"}, []string{"serve"}, "HSRCPAY_ADDR"},
		{map[string]string{"HSRCPAY_METRICS_ADDR": "nonsense"}, []string{"serve"}, "HSRCPAY_METRICS_ADDR"},
		{nil, []string{"serve", "--metrics-addr", "127.0.0.1:99999"}, "HSRCPAY_METRICS_ADDR"},
		{nil, []string{"serve", "--rate-limit-test", "-5"}, "HSRCPAY_RATE_LIMIT_TEST"},
		{nil, []string{"serve", "--rate-limit-account-live", "0"}, "HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE"},
		{map[string]string{"HSRCPAY_RATE_LIMIT_ACCOUNT_TEST": "lots"}, []string{"serve"}, "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST"},
		{nil, []string{"serve", "--auth-failure-limit", "0"}, "HSRCPAY_AUTH_FAILURE_LIMIT"},
		{map[string]string{"HSRCPAY_SECRET_SCANNING_KEYS_FILE": "/nonexistent/github-keys.json"}, []string{"serve"}, "HSRCPAY_SECRET_SCANNING_KEYS_"},
		{map[string]string{"HSRCPAY_SECRET_SCANNING_KEYS_FILE": "/k", "HSRCPAY_SECRET_SCANNING_KEYS_URL": "https://x/k"}, []string{"serve"}, "HSRCPAY_SECRET_SCANNING_KEYS_FILE"},
		{map[string]string{"HSRCPAY_SECRET_SCANNING_KEYS_URL": "ftp://x/k"}, []string{"serve"}, "HSRCPAY_SECRET_SCANNING_KEYS_URL"},
		{nil, []string{"bootstrap", "--account", "bad id"}, "--account"},
		{nil, []string{"frobnicate"}, "unknown command"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code == 0 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("%v %v: exit %d, stderr %q", tc.env, tc.args, code, errb.String())
		}
		for k := range tc.env {
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// binDir holds the binary buildBinary compiled; TestMain removes it.
var binDir string

// buildBinary compiles the server once per test binary.
var buildBinary = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "hsrcpay-bin")
	if err != nil {
		return "", err
	}
	binDir = dir
	bin := filepath.Join(dir, "hsrcpay-server")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		// The real process raced too: it prints each race at once and exits
		// 66 instead of 0 (the SIGTERM tests check the exit; startServer
		// reads the reports of the processes it kills).
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil { //nolint:gosec // the go toolchain, building this package into a temp dir
		return "", fmt.Errorf("build: %w\n%s", err, out)
	}
	return bin, nil
})

// startServer runs `hsrcpay-server serve` with env on a free port and
// returns the process, its /v1 base URL and the export lines it printed.
// Its metrics listener takes any free port (HSRCPAY_METRICS_ADDR=127.0.0.1:0)
// unless env says otherwise, so servers started side by side never collide
// on the default 9090.
func startServer(t *testing.T, env ...string) (*exec.Cmd, string, map[string]string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.CommandContext(context.Background(), bin, "serve") //nolint:gosec // the server binary this test built
	cmd.Env = append(append(os.Environ(), "HSRCPAY_ADDR="+addr, "HSRCPAY_METRICS_ADDR=127.0.0.1:0"), env...)
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer // read after Wait, when exec has copied everything
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only if it has exited already
		_ = cmd.Wait()         // killed: the error says so
		if strings.Contains(stderr.String(), "WARNING: DATA RACE") {
			t.Errorf("the server process reported a data race:\n%s", stderr.String())
		}
	})
	vars := map[string]string{}
	sc := bufio.NewScanner(stdout)
	demo := slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "HSRCPAY_DEMO_ACCOUNT=") })
	for demo && len(vars) < 4 && sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export ") {
			vars[k] = v
		}
	}
	go func() {
		for sc.Scan() {
		}
	}()
	for i := 0; i < 200; i++ {
		if c, err := new(net.Dialer).DialContext(context.Background(), "tcp", addr); err == nil {
			_ = c.Close() // a probe: it connected
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return cmd, "http://" + addr + "/v1", vars
}

// TestSIGTERMDrainsAndFlushes runs the real binary: SIGTERM ends it cleanly,
// and the last use of a key, still in memory, reaches the store on the way out.
func TestSIGTERMDrainsAndFlushes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	start := func() (*exec.Cmd, string, map[string]string) {
		return startServer(t, "HSRCPAY_DATABASE_URL=sqlite:"+dir, "HSRCPAY_DEMO_ACCOUNT=acct_sig", "HSRCPAY_USAGE_FLUSH_INTERVAL=1h")
	}
	cmd, base, vars := start()
	c, err := client.New(base, vars["HSRCPAY_API_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	k, err := c.CreateAPIKey(context.Background(), "acct_sig", client.CreateAPIKeyRequest{Name: "user", Permissions: client.Permissions{"account:api:key": {"create"}}})
	if err != nil {
		t.Fatal(err)
	}
	// Use the new key once: its last use is only in memory (flush interval 1h).
	c2, _ := client.New(base, k.Key)
	if _, err := c2.CreateAPIKey(context.Background(), "acct_sig", client.CreateAPIKeyRequest{Name: "child", Permissions: client.Permissions{}}); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("server did not stop within 20s of SIGTERM")
	}
	t.Logf("stopped %v after SIGTERM", time.Since(began))
	// Restart on the same files: the custom key works and its last use was kept.
	_, base, _ = start()
	c3, _ := client.New(base, k.Key)
	if _, err := c3.CreateAPIKey(context.Background(), "acct_sig", client.CreateAPIKeyRequest{Name: "after restart", Permissions: client.Permissions{}}); err != nil {
		t.Fatalf("key issued before the restart: %v", err)
	}
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // only read
	got, err := st.Repo(apikey.Sandbox).GetKey(context.Background(), k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.LastUsedAt == nil || got.LastUsedIP == nil {
		t.Fatal("last_used_at was not flushed at shutdown")
	}
}

// TestLogLinesSurviveSIGTERM runs the real binary: the access-log lines of
// requests answered before SIGTERM are all on stderr once the process has
// exited, followed by its shutdown line. Stderr is a pipe nobody reads
// until well after SIGTERM, so most lines are still waiting in the log
// writer (the pipe holds 64 KiB) when the server has stopped: only the
// final flush, which waits for the reader, gets them out.
func TestLogLinesSurviveSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.CommandContext(context.Background(), bin, "serve") //nolint:gosec // the server binary this test built
	// Probes log at DEBUG: the level that shows them.
	cmd.Env = append(os.Environ(), "HSRCPAY_ADDR="+addr, "HSRCPAY_METRICS_ADDR=", "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir(), "HSRCPAY_LOG_LEVEL=debug")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // fails only if it has exited already
	const n = 1200                               // ~200 KiB of log lines
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func() error {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "http://"+addr+"/healthz", nil)
		res, err := hc.Do(req)
		if err == nil {
			_ = res.Body.Close() // only the status matters
		}
		return err
	}
	for i := 0; get() != nil; i++ {
		if i > 200 {
			t.Fatal("the server did not start")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range n / 4 {
				if err := get(); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // long enough to exit, had it not waited to flush
	logged, err := io.ReadAll(stderr)
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v\n%s", err, logged)
	}
	var requests int
	var last string
	for _, line := range strings.Split(strings.TrimSpace(string(logged)), "\n") {
		var rec struct{ Msg, Path string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a whole JSON line: %q", line)
		}
		if rec.Msg == "request" && rec.Path == "/healthz" {
			requests++
		}
		last = rec.Msg
	}
	// The requests, plus the ones that waited for the server to start.
	if requests < n+1 || last != "shutting down" {
		t.Fatalf("%d request lines (want at least %d), last line %q", requests, n+1, last)
	}
}

// TestTwoServerProcesses runs two real server processes on one PostgreSQL
// database and one Redis, as two replicas behind a load balancer.
func TestTwoServerProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dbURL := storetest.FreshPostgresDB(t)
	redisURL := testredis.URL(t) // skips without Redis, fails under HSRCPAY_REQUIRE_REDIS=1
	env := []string{"HSRCPAY_DATABASE_URL=" + dbURL, "HSRCPAY_REDIS_URL=" + redisURL,
		"HSRCPAY_RATE_LIMIT_TEST=" + "4"}
	// Provision with the binary, as an operator would.
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	account := fmt.Sprintf("acct_p%d", time.Now().UnixNano())
	boot := exec.CommandContext(context.Background(), bin, "bootstrap", "--account", account) //nolint:gosec // the server binary this test built
	boot.Env = append(os.Environ(), env...)
	out, err := boot.Output()
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	var res struct {
		Keys []managedKey `json:"keys"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	var live, sandbox managedKey
	for _, k := range res.Keys {
		if k.Type == "SECRET" && k.Mode == "live" {
			live = k
		}
		if k.Type == "SECRET" && k.Mode == "test" {
			sandbox = k
		}
	}
	_, a, _ := startServer(t, env...)
	_, b, _ := startServer(t, env...)
	ctx := context.Background()
	ca, _ := client.New(a, live.Secret, client.WithRetries(0, 0))
	k, err := ca.RegenerateAPIKey(ctx, live.ID)
	if err != nil {
		t.Fatal(err)
	}
	// The other process refuses the old secret at once and takes the new one.
	cbOld, _ := client.New(b, live.Secret, client.WithRetries(0, 0))
	_, err = cbOld.RegenerateAPIKey(ctx, live.ID)
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != client.CodeInvalidCredentials {
		t.Fatalf("old secret on the other process: %v", err)
	}
	cbNew, _ := client.New(b, k.Key, client.WithRetries(0, 0))
	if _, err := cbNew.CreateAPIKey(ctx, account, client.CreateAPIKeyRequest{Name: "via b", Permissions: client.Permissions{}}); err != nil {
		t.Fatalf("new secret on the other process: %v", err)
	}
	// One sandbox budget (4/s) across both processes.
	limited := 0
	for i := 0; i < 8; i++ {
		base := a
		if i%2 == 1 {
			base = b
		}
		c, _ := client.New(base, sandbox.Secret, client.WithRetries(0, 0))
		_, err := c.RegenerateAPIKey(ctx, "key_none")
		if errors.Is(err, client.ErrRateLimited) {
			limited++
		}
	}
	if limited < 3 {
		t.Fatalf("%d of 8 requests limited across two processes sharing a 4/s budget", limited)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }() // frees the port for its user
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }() // read to the end below
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

// TestMetricsListener runs the real binary: metrics are served on
// HSRCPAY_METRICS_ADDR only, not on the API's listener (rule 11).
func TestMetricsListener(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	maddr := freeAddr(t)
	_, base, vars := startServer(t, "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir(), "HSRCPAY_DEMO_ACCOUNT=acct_metrics",
		"HSRCPAY_METRICS_ADDR="+maddr)
	c, err := client.New(base, vars["HSRCPAY_API_KEY"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAPIKey(context.Background(), "acct_metrics", client.CreateAPIKeyRequest{Name: "scraped", Permissions: client.Permissions{}}); err != nil {
		t.Fatal(err)
	}
	bad, _ := client.New(base, "sk_test_"+strings.Repeat("A", 38), client.WithRetries(0, 0))
	if _, err := bad.RegenerateAPIKey(context.Background(), "key_x"); !errors.Is(err, client.ErrUnauthorized) { // an auth failure, counted by reason
		t.Fatalf("a key with a bad checksum: %v, want 401", err)
	}

	res, body := httpGet(t, "http://"+maddr+"/metrics") //nolint:bodyclose // httpGet reads and closes the body
	if res.StatusCode != 200 {
		t.Fatalf("metrics listener /metrics: %d", res.StatusCode)
	}
	for _, want := range []string{
		`hsrcpay_http_requests_total{operation="createApiKey",status="201"} 1`,
		`hsrcpay_auth_failures_total{reason="checksum"} 1`,
		"go_goroutines",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, vars["HSRCPAY_API_KEY"]) {
		t.Fatal("a secret in the metrics")
	}
	// The API's listener does not serve them: the same 404 envelope as any unknown path.
	root := strings.TrimSuffix(base, "/v1")
	for _, p := range []string{"/metrics", "/metrics/", "/nope"} {
		res, body := httpGet(t, root+p) //nolint:bodyclose // httpGet reads and closes the body
		var env struct {
			Success bool `json:"success"`
			Error   struct {
				Code int `json:"code"`
			} `json:"error"`
		}
		if res.StatusCode != 404 || json.Unmarshal([]byte(body), &env) != nil || env.Error.Code != 40402 || env.Success {
			t.Errorf("API listener %s: %d %.200s; want the 404 envelope (40402)", p, res.StatusCode, body)
		}
		if strings.Contains(body, "hsrcpay_") {
			t.Errorf("API listener %s shows metrics", p)
		}
	}
	// And the metrics listener serves nothing but metrics.
	for _, p := range []string{"/v1/api-keys/", "/healthz", "/docs", "/"} {
		if res, _ := httpGet(t, "http://"+maddr+p); res.StatusCode != 404 { //nolint:bodyclose // httpGet reads and closes the body
			t.Errorf("metrics listener %s: %d, want 404", p, res.StatusCode)
		}
	}
}

// TestMetricsAddrInUse: a metrics port that cannot be bound stops the server
// at start, naming the variable, before the demo account's keys are rotated.
func TestMetricsAddrInUse(t *testing.T) {
	held, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }() // held only to make the port taken
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
	t.Setenv("HSRCPAY_ADDR", "127.0.0.1:0")
	t.Setenv("HSRCPAY_METRICS_ADDR", held.Addr().String())
	t.Setenv("HSRCPAY_DEMO_ACCOUNT", "acct_inuse")
	t.Setenv("HSRCPAY_LOG_LEVEL", "error")
	var out, errb bytes.Buffer
	done := make(chan int, 1)
	go func() { done <- run([]string{"serve"}, &out, &errb) }()
	select {
	case code := <-done:
		if code == 0 || !strings.Contains(errb.String(), "HSRCPAY_METRICS_ADDR") {
			t.Fatalf("exit %d, stderr %q", code, errb.String())
		}
		if strings.Contains(out.String(), "export HSRCPAY_API_KEY=") {
			t.Fatalf("demo keys printed although the server could not start:\n%s", out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not fail within 20s with its metrics port in use")
	}
}

// TestMetricsListenerOff: HSRCPAY_METRICS_ADDR="" serves no metrics at all.
func TestMetricsListenerOff(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	_, base, _ := startServer(t, "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir(), "HSRCPAY_METRICS_ADDR=")
	root := strings.TrimSuffix(base, "/v1")
	if res, _ := httpGet(t, root+"/healthz"); res.StatusCode != 200 { //nolint:bodyclose // httpGet reads and closes the body
		t.Fatalf("healthz %d", res.StatusCode)
	}
	if res, _ := httpGet(t, root+"/metrics"); res.StatusCode != 404 { //nolint:bodyclose // httpGet reads and closes the body
		t.Fatalf("/metrics on the API: %d", res.StatusCode)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir) // a temp dir: best effort
	}
	os.Exit(code)
}

// TestLeakReportFromKeysURL runs the real binary with GitHub's keys at a URL:
// a signed report of the demo account's publishable key rotates it (its old
// secret is refused), an unsigned one is 401.
func TestLeakReportFromKeysURL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	gh := secretscan.Signer{ID: "gh-1", Key: priv}
	doc, err := secretscan.DocumentOf(gh)
	if err != nil {
		t.Fatal(err)
	}
	keysSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(doc) }))
	defer keysSrv.Close()
	_, base, vars := startServer(t, "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir(), "HSRCPAY_DEMO_ACCOUNT=acct_leak_demo",
		"HSRCPAY_SECRET_SCANNING_KEYS_URL="+keysSrv.URL)
	sk, pk := vars["HSRCPAY_API_KEY"], vars["HSRCPAY_PUBLISHABLE_KEY"]
	body := []byte(`[{"token":"` + sk + `","type":"hsrcpay_secret_key","url":"https://github.com/o/r/blob/x/.env","source":"content"},` +
		`{"token":"` + pk + `","type":"hsrcpay_publishable_key","url":"https://github.com/o/r/blob/x/a.js","source":"content"}]`)
	post := func(sig string) (int, string) {
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, base+"/secret-scanning/github", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if sig != "" {
			req.Header.Set("Github-Public-Key-Identifier", gh.ID)
			req.Header.Set("Github-Public-Key-Signature", sig)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = res.Body.Close() }()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if status, b := post(""); status != http.StatusUnauthorized || !strings.Contains(b, "40104") {
		t.Fatalf("unsigned: %d %s", status, b)
	}
	sig, err := gh.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	// The managed secret key is rotated; the publishable key is public by
	// design (issue 17): false_positive, and it keeps working.
	status, b := post(sig)
	var verdicts []struct{ Label string }
	if status != http.StatusOK || json.Unmarshal([]byte(b), &verdicts) != nil || len(verdicts) != 2 ||
		verdicts[0].Label != "true_positive" || verdicts[1].Label != "false_positive" {
		t.Fatalf("signed: %d %s", status, b)
	}
	for _, c := range []struct {
		secret, what string
		status       int // of a GET by it: 401 once revoked, 403 for a working publishable key
	}{{sk, "the leaked secret key", http.StatusUnauthorized}, {pk, "the reported publishable key", http.StatusForbidden}} {
		cl, err := client.New(base, c.secret)
		if err != nil {
			t.Fatal(err)
		}
		var ce *client.Error
		if _, err := cl.GetAPIKey(context.Background(), vars["HSRCPAY_KEY_ID"]); !errors.As(err, &ce) || ce.StatusCode != c.status {
			t.Fatalf("%s after the report: %v, want %d", c.what, err, c.status)
		}
	}
}
