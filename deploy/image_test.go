package deploy

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
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
)

// The image's test builds the image with `make image` (or takes
// HSRCPAY_TEST_IMAGE, already built), reads its configuration, exports a
// container's filesystem and runs the server from it with chroot as uid
// 65532: `podman run` cannot start containers on these machines (setrlimit is
// refused), and chroot runs the very files the image holds, as its user. It
// skips without podman (or root, for chroot) unless HSRCPAY_REQUIRE_PODMAN=1.

const imageUID = 65532

func podman(t *testing.T, args ...string) string {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), "podman", args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return strings.TrimSpace(stdout.String())
}

// testImage returns the image to check: HSRCPAY_TEST_IMAGE, or one built
// now by `make image` under a tag of its own, removed at the end.
func testImage(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("podman"); err != nil {
		if required("HSRCPAY_REQUIRE_PODMAN") {
			t.Fatal("podman not found (make image-tools installs it)")
		}
		t.Skip("podman not found (make image-tools; HSRCPAY_REQUIRE_PODMAN=1 makes this a failure)")
	}
	if os.Geteuid() != 0 {
		if required("HSRCPAY_REQUIRE_PODMAN") {
			t.Fatal("the image test runs the server with chroot, which needs root")
		}
		t.Skip("the image test runs the server with chroot, which needs root")
	}
	if ref := os.Getenv("HSRCPAY_TEST_IMAGE"); ref != "" {
		return ref
	}
	tag := "test-" + rand.Text()[:10]
	const repo = "localhost/hsrcpay-server-test"
	cmd := exec.CommandContext(t.Context(), "make", "--no-print-directory", "image", //nolint:gosec // this repository's Makefile, with the test's own tag and directory
		"IMAGE="+repo, "IMAGE_TAG="+strings.ToLower(tag), "IMAGE_CTX="+t.TempDir())
	cmd.Dir = repoRoot(t)
	out, err := cmd.CombinedOutput()
	ref := repo + ":" + strings.ToLower(tag)
	t.Cleanup(func() {
		// Not t.Context(): it is done by the time cleanups run.
		_ = exec.CommandContext(context.Background(), "podman", "rmi", "--force", ref).Run() //nolint:gosec // best effort (a failed build made none); the image the test built
	})
	if err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}
	return ref
}

// imageConfig is the part of `podman image inspect` the test reads.
type imageConfig struct {
	User         string              `json:"User"`
	Env          []string            `json:"Env"`
	Entrypoint   []string            `json:"Entrypoint"`
	Cmd          []string            `json:"Cmd"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts"`
}

// exportRootfs exports a container of ref into a tar file and returns its
// path; the container is removed at the end.
func exportRootfs(t *testing.T, ref string) string {
	t.Helper()
	id := podman(t, "create", ref)
	t.Cleanup(func() {
		_ = exec.CommandContext(context.Background(), "podman", "rm", "--force", id).Run() //nolint:gosec // best effort; the container the test created
	})
	file := filepath.Join(t.TempDir(), "rootfs.tar")
	podman(t, "export", "--output", file, id)
	return file
}

type tarEntry struct {
	mode     os.FileMode
	uid, gid int
	typ      byte
}

func readTar(t *testing.T, file string) map[string]tarEntry {
	t.Helper()
	f, err := os.Open(file) //nolint:gosec // the test's own temporary file
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // only read
	entries := map[string]tarEntry{}
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.Trim(filepath.Clean(h.Name), "/")
		entries[name] = tarEntry{mode: h.FileInfo().Mode(), uid: h.Uid, gid: h.Gid, typ: h.Typeflag}
	}
	return entries
}

// TestImage: the image runs the server as uid 65532 from a filesystem
// holding nothing else to run (no shell), with working defaults: it serves,
// is ready, and a key created through the Go client works; the data it
// writes stays the server's user's.
func TestImage(t *testing.T) {
	ref := testImage(t)

	var cfgs []imageConfig
	if err := json.Unmarshal([]byte(podman(t, "image", "inspect", "--format", "[{{json .Config}}]", ref)), &cfgs); err != nil || len(cfgs) != 1 {
		t.Fatalf("image inspect: %v (%d configs)", err, len(cfgs))
	}
	cfg := cfgs[0]
	if cfg.User != fmt.Sprintf("%d:%d", imageUID, imageUID) {
		t.Errorf("image user %q, want %d:%d (numeric, non-root: Kubernetes' runAsNonRoot can check it)", cfg.User, imageUID, imageUID)
	}
	if !slices.Equal(cfg.Entrypoint, []string{"/app/hsrcpay-server"}) || !slices.Equal(cfg.Cmd, []string{"serve"}) {
		t.Errorf("entrypoint %q cmd %q, want [/app/hsrcpay-server] [serve]", cfg.Entrypoint, cfg.Cmd)
	}
	for _, p := range []string{"8080/tcp", "9090/tcp"} {
		if _, ok := cfg.ExposedPorts[p]; !ok {
			t.Errorf("port %s not exposed (%v)", p, cfg.ExposedPorts)
		}
	}
	env := map[string]string{}
	for _, kv := range cfg.Env {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, want := range map[string]string{
		"HSRCPAY_ADDR":         "0.0.0.0:8080",
		"HSRCPAY_METRICS_ADDR": "0.0.0.0:9090",
		"HSRCPAY_DATABASE_URL": "sqlite:/data/db",
	} {
		if env[k] != want {
			t.Errorf("image default %s=%q, want %q", k, env[k], want)
		}
	}

	tarFile := exportRootfs(t, ref)
	entries := readTar(t, tarFile)
	for name, e := range entries {
		if e.typ == tar.TypeReg && e.mode&0o111 != 0 && name != "/app/hsrcpay-server" {
			t.Errorf("%s is executable: the image should hold the server only", name)
		}
		if base := filepath.Base(name); base == "sh" || base == "bash" || base == "busybox" {
			t.Errorf("the image holds a shell: %s", name)
		}
	}
	for _, name := range []string{"/bin/sh", "/usr/bin/sh"} {
		if _, ok := entries[name]; ok {
			t.Errorf("%s exists", name)
		}
	}
	if e, ok := entries["/app/hsrcpay-server"]; !ok || e.uid != 0 || e.mode.Perm() != 0o755 {
		t.Errorf("/app/hsrcpay-server: %+v (present %v), want root-owned 0755: the server cannot rewrite itself", e, ok)
	}
	if e, ok := entries["/data"]; !ok || !e.mode.IsDir() || e.uid != imageUID || e.gid != imageUID || e.mode.Perm() != 0o700 {
		t.Errorf("/data: %+v (present %v), want a directory of %d:%d, mode 0700", e, ok, imageUID, imageUID)
	}
	if e, ok := entries["/tmp"]; !ok || e.mode&os.ModeSticky == 0 || e.mode.Perm() != 0o777 {
		t.Errorf("/tmp: %+v (present %v), want mode 1777", e, ok)
	}

	rootfs := t.TempDir()
	//nolint:gosec // the test's own export into its own directory
	if out, err := exec.CommandContext(t.Context(), "tar", "--numeric-owner", "-xpf", tarFile, "-C", rootfs).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	pem, err := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")) //nolint:gosec // inside the test's own export
	if err != nil {
		t.Fatal(err)
	}
	if pool := x509.NewCertPool(); !pool.AppendCertsFromPEM(pem) || bytes.Count(pem, []byte("BEGIN CERTIFICATE")) < 50 {
		t.Error("the image's CA bundle holds no usable certificates")
	}

	runServer(t, rootfs, env)
}

// runServer starts the image's server from rootfs with chroot as the
// image's user, on the image's defaults but loopback ports the system
// chooses, checks it serves, then stops it with SIGTERM.
func runServer(t *testing.T, rootfs string, imageEnv map[string]string) {
	vars := []string{
		"HSRCPAY_ADDR=127.0.0.1:0",
		"HSRCPAY_METRICS_ADDR=127.0.0.1:0",
		"HSRCPAY_DEMO_ACCOUNT=acct_image",
		"HSRCPAY_LOG_LEVEL=info",
		"HSRCPAY_VALIDATE_RESPONSES=true",
	}
	for k, v := range imageEnv {
		if !strings.HasPrefix(k, "HSRCPAY_ADDR") && !strings.HasPrefix(k, "HSRCPAY_METRICS_ADDR") {
			vars = append(vars, k+"="+v) // the image's data directory and anything else it sets
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	spec := fmt.Sprintf("%d:%d", imageUID, imageUID)
	cmd := exec.CommandContext(ctx, "chroot", "--userspec="+spec, rootfs, "/app/hsrcpay-server", "serve") //nolint:gosec // the image's own server, in the test's export
	// Nothing from this process's environment: the image's settings and the test's.
	cmd.Env = vars
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{}) // closed once waitErr is set
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(exited) }()
	defer func() { cancel(); <-exited }() // kills it if a check failed before SIGTERM

	keys := map[string]string{}
	lines := make(chan string, 64)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(30 * time.Second)
	for keys["HSRCPAY_API_URL"] == "" || keys["HSRCPAY_API_KEY"] == "" || keys["HSRCPAY_ACCOUNT"] == "" {
		select {
		case line, ok := <-lines:
			if !ok {
				t.Fatalf("the server exited before printing the demo keys; stderr:\n%s", &stderr)
			}
			if kv, ok := strings.CutPrefix(line, "export "); ok {
				k, v, _ := strings.Cut(kv, "=")
				keys[k] = v
			}
		case <-deadline:
			t.Fatalf("no demo keys within 30s; stderr:\n%s", &stderr)
		}
	}
	go func() {
		for range lines { // keep the pipe drained
		}
	}()
	apiURL := keys["HSRCPAY_API_URL"]
	root := strings.TrimSuffix(apiURL, "/v1")

	// The process runs as the image's user, not root.
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) != 4 || slices.ContainsFunc(f, func(s string) bool { return s != fmt.Sprint(imageUID) }) {
				t.Errorf("server's uids %q, want %d for real, effective, saved and filesystem", f, imageUID)
			}
		}
	}

	httpc := &http.Client{Timeout: 10 * time.Second}
	if code := getStatus(t, httpc, root+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz answered %d; stderr:\n%s", code, &stderr)
	}
	metricsAddr := listeningMetrics(t, &stderr)
	if code := getStatus(t, httpc, "http://"+metricsAddr+"/metrics"); code != http.StatusOK {
		t.Errorf("/metrics on %s answered %d", metricsAddr, code)
	}

	c, err := client.New(apiURL, keys["HSRCPAY_API_KEY"], client.WithHTTPClient(httpc), client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateAPIKey(t.Context(), keys["HSRCPAY_ACCOUNT"], client.CreateAPIKeyRequest{Name: "from the image test", Permissions: client.Permissions{}})
	if err != nil {
		t.Fatalf("create through the client: %v; stderr:\n%s", err, &stderr)
	}
	got, err := c.GetAPIKey(t.Context(), created.ID)
	if err != nil || got.Name != "from the image test" {
		t.Fatalf("the created key %s: %+v, %v", created.ID, got, err)
	}

	// SIGTERM: drains, then exits 0.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
		if waitErr != nil {
			t.Errorf("server exit after SIGTERM: %v; stderr:\n%s", waitErr, &stderr)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("server still running 60s after SIGTERM; stderr:\n%s", &stderr)
	}

	// What it wrote is the server's user's, and the idempotency key is private.
	dataDir := filepath.Join(rootfs, "data")
	err = filepath.Walk(dataDir, func(path string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if ok && st.Uid != imageUID {
			t.Errorf("%s is owned by uid %d", path, st.Uid)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"db/live.db", "db/sandbox.db"} {
		if _, err := os.Stat(filepath.Join(dataDir, name)); err != nil {
			t.Errorf("no %s in the image's data directory: %v", name, err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dataDir, "db.idempotency.key")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("idempotency key file beside sqlite:/data/db: %v, %v; want mode 0600", fi, err)
	}
}

func getStatus(t *testing.T, c *http.Client, url string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	_, _ = io.Copy(io.Discard, res.Body) // only the status matters
	_ = res.Body.Close()
	return res.StatusCode
}

// listeningMetrics reads the metrics address from the server's "listening"
// log line (it chose the port).
func listeningMetrics(t *testing.T, stderr *lockedBuffer) string {
	t.Helper()
	for start := time.Now(); time.Since(start) < 10*time.Second; time.Sleep(20 * time.Millisecond) {
		for _, line := range strings.Split(stderr.String(), "\n") {
			var rec struct {
				Msg         string `json:"msg"`
				MetricsAddr string `json:"metrics_addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" && rec.MetricsAddr != "" {
				return rec.MetricsAddr
			}
		}
	}
	t.Fatalf("no listening line with metrics_addr; stderr:\n%s", stderr)
	return ""
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
