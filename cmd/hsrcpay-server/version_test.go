package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/config"
)

// git runs git in dir and returns its trimmed output.
func git(dir string, args ...string) (string, error) {
	out, err := exec.CommandContext(context.Background(), "git", append([]string{"-C", dir}, args...)...).Output() //nolint:gosec // git, with this test's fixed arguments
	return strings.TrimSpace(string(out)), err
}

// TestVersionFromMakeBuild builds both binaries as `make build` does (into
// a temporary BIN_DIR) and checks that the version it stamps, git describe's
// (dev+<commit> without a tag), and the commit are what `hsrcpay-server
// version`, --version and -v print, what `hsrcpay version` prints, what the
// start log line says, and what /metrics exports as hsrcpay_build_info.
func TestVersionFromMakeBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries with make")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	bin := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "make", "-s", "--no-print-directory", "-C", root, "build", "BIN_DIR="+bin).CombinedOutput(); err != nil { //nolint:gosec // make, with this test's fixed arguments
		t.Fatalf("make build: %v\n%s", err, out)
	}
	// What the Makefile promises, asked of git the same way.
	want, err := git(root, "describe", "--tags", "--dirty")
	if err != nil {
		short, err := git(root, "describe", "--always", "--dirty")
		if err != nil {
			t.Fatalf("git describe: %v", err)
		}
		want = "dev+" + short
	}
	rev, err := git(root, "rev-parse", "HEAD")
	if err != nil || len(rev) != 40 {
		t.Fatalf("git rev-parse HEAD: %q, %v", rev, err)
	}
	if want == "" || strings.Contains(want, "(devel)") {
		t.Fatalf("expected version %q", want)
	}

	for _, c := range []struct {
		prog string
		args []string
	}{
		{"hsrcpay-server", []string{"version"}}, {"hsrcpay-server", []string{"--version"}}, {"hsrcpay-server", []string{"-v"}},
		{"hsrcpay", []string{"version"}}, {"hsrcpay", []string{"--version"}},
	} {
		out, err := exec.CommandContext(ctx, filepath.Join(bin, c.prog), c.args...).Output() //nolint:gosec // a binary this test built
		if err != nil {
			t.Fatalf("%s %v: %v", c.prog, c.args, err)
		}
		wantAll(t, fmt.Sprint(c.prog, c.args), string(out), c.prog+" "+want+"\n", "revision: "+rev+"\n", "go:       "+runtime.Version()+" ")
		if strings.Contains(string(out), "(devel)") || strings.Contains(string(out), "unknown") {
			t.Errorf("%s %v: still unstamped:\n%s", c.prog, c.args, out)
		}
	}

	// The start log line and the metric, from the same binary.
	_, logs := launch(t, filepath.Join(bin, "hsrcpay-server"), "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir())
	start := logs.line("listening")
	if start["version"] != want || start["revision"] != rev || start["go_version"] != runtime.Version() {
		t.Errorf("listening line: version %v revision %v go %v; want %s %s %s", start["version"], start["revision"], start["go_version"], want, rev, runtime.Version())
	}
	maddr, _ := start["metrics_addr"].(string)
	res, body := httpGet(t, "http://"+maddr+"/metrics") //nolint:bodyclose // httpGet reads and closes the body
	metric := fmt.Sprintf(`hsrcpay_build_info{go_version=%q,revision=%q,version=%q} 1`, runtime.Version(), rev, want)
	if res.StatusCode != 200 || !strings.Contains(body, metric) {
		var got []string
		for _, l := range strings.Split(body, "\n") {
			if strings.Contains(l, "build_info") {
				got = append(got, l)
			}
		}
		t.Errorf("/metrics: %d, want %s; has:\n%s", res.StatusCode, metric, strings.Join(got, "\n"))
	}
}

// TestVersionStartSummary: the start line's settings summary names the
// store by its kind (never its URL, which may hold a password) and says
// which features are on.
func TestVersionStartSummary(t *testing.T) {
	cfg, err := config.Load(func(k string) (string, bool) {
		v, ok := map[string]string{
			"HSRCPAY_DATABASE_URL": "postgres://hsrcpay:hunter2@db.internal:5432/keys", "HSRCPAY_REDIS_URL": "redis://:redispw@cache:6379/0",
			"HSRCPAY_CREDENTIAL_CACHE_TTL": "2s", "HSRCPAY_VALIDATE_RESPONSES": "0.05",
		}[k]
		return v, ok
	})
	if err != nil {
		t.Fatal(err)
	}
	attrs := startSummary(cfg, "127.0.0.1:8443", "127.0.0.1:9090", serveTLS{})
	got := map[string]any{}
	for i := 0; i+1 < len(attrs); i += 2 {
		got[attrs[i].(string)] = attrs[i+1]
	}
	for k, v := range map[string]any{
		"database": "postgres", "redis": true, "tls": false, "credential_cache_ttl": "2s", "validate_responses": "0.05",
		"credential_cache_keys": 100_000, "credential_cache_memory": int64(128 << 20),
		"addr": "127.0.0.1:8443", "metrics_addr": "127.0.0.1:9090", "go_version": runtime.Version(),
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	for _, k := range []string{"version", "revision"} {
		if s, _ := got[k].(string); s == "" {
			t.Errorf("%s missing: %v", k, got)
		}
	}
	if s := fmt.Sprint(attrs...); strings.Contains(s, "hunter2") || strings.Contains(s, "redispw") || strings.Contains(s, "db.internal") {
		t.Errorf("the summary shows a URL: %s", s)
	}
}
