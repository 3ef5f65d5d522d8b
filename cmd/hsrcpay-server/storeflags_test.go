package main

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestStoreFlagsOnEveryStoreCommand: bootstrap, rotate-managed and audit
// verify take serve's store flags (--database-url, --sqlite-synchronous,
// --store-timeout), on SQLite and PostgreSQL, and a flag wins over the
// environment, which names another SQLite store: that one is left as it was
// (no such account there, no events).
func TestStoreFlagsOnEveryStoreCommand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		url   func(t testing.TB) string
		extra []string
	}{
		{"sqlite", func(t testing.TB) string { return "sqlite:" + t.TempDir() }, []string{"--sqlite-synchronous", "FULL"}},
		{"postgres", storetest.FreshPostgresDB, []string{"--store-timeout", "10s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url(t)
			t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
			flags := append([]string{"--database-url", url}, tc.extra...)
			const account = "acct_flags"

			code, boot, stderr := rotateRun(t, append([]string{"bootstrap", "--account", account, "--mode", "live"}, flags...)...)
			if code != 0 || boot["SECRET"].Secret == "" || boot["PUBLISHABLE"].Secret == "" {
				t.Fatalf("bootstrap --database-url: exit %d, keys %v: %s", code, boot, stderr)
			}
			code, rotated, stderr := rotateRun(t, append([]string{"rotate-managed", "--account", account, "--mode", "live"}, flags...)...)
			if code != 0 || rotated["SECRET"].ID != boot["SECRET"].ID || rotated["SECRET"].Secret == boot["SECRET"].Secret {
				t.Fatalf("rotate-managed --database-url: exit %d, keys %v: %s", code, rotated, stderr)
			}
			// Two keys bootstrapped, two rotated: an event each.
			code, out, stderr := runCLI(append([]string{"audit", "verify"}, flags...)...)
			if code != 0 || !strings.Contains(out, "4 events checked") {
				t.Fatalf("audit verify --database-url: exit %d, stdout %q, stderr %q", code, out, stderr)
			}

			// The environment's store was not touched.
			code, _, stderr = rotateRun(t, "rotate-managed", "--account", account, "--mode", "live")
			if code != 1 || !strings.Contains(stderr, "no such account") {
				t.Fatalf("rotate-managed on the environment's store: exit %d, stderr %q", code, stderr)
			}
			if code, out, stderr := runCLI("audit", "verify"); code != 0 || !strings.Contains(out, "0 events checked") {
				t.Fatalf("audit verify on the environment's store: exit %d, stdout %q, stderr %q", code, out, stderr)
			}
		})
	}
}

// TestStoreFlagsAreServes: the store commands' flags are serve's own (the
// same help, default and variable), and a bad value is refused as serve
// refuses it, naming the variable (exit 2, nothing opened).
func TestStoreFlagsAreServes(t *testing.T) {
	serve := mustFind(t, "serve")
	for _, path := range [][]string{{"bootstrap"}, {"rotate-managed"}, {"audit", "verify"}} {
		c := mustFind(t, path...)
		names := storeSettings
		if path[0] != "audit" {
			names = issueSettings
		}
		for _, v := range names {
			f, want := c.Flags().Lookup(flagName(v)), serve.Flags().Lookup(flagName(v))
			if f == nil || f.Usage != want.Usage || f.DefValue != want.DefValue || f.Value.Type() != want.Value.Type() {
				t.Errorf("%v: --%s is %+v, want serve's %+v", path, flagName(v), f, want)
			}
		}
		code, out, _ := runCLI(append(path, "--help")...)
		if code != 0 {
			t.Fatalf("%v --help: exit %d", path, code)
		}
		wantAll(t, strings.Join(path, " ")+" --help", out, "--database-url string", `(default "sqlite:./data")`, "$HSRCPAY_DATABASE_URL", "--store-timeout duration")
	}
	dir := t.TempDir()
	for _, args := range [][]string{
		{"bootstrap", "--account", "acct_x", "--database-url", "mysql://x"},
		{"rotate-managed", "--account", "acct_x", "--mode", "live", "--store-timeout", "1h"},
		{"audit", "verify", "--sqlite-synchronous", "SOMETIMES"},
	} {
		t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
		code, out, errOut := runCLI(args...)
		if code != 2 || out != "" || !strings.Contains(errOut, "bad configuration") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q", args, code, out, errOut)
		}
	}
	if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
		t.Errorf("a refused configuration opened the store anyway: %v %v", entries, err)
	}
}

// TestDefaultIdempotencyKeyIsIgnoredByGit: after a run as `make run` does
// it (serve with the defaults and the demo account) in a git repository with
// this repository's .gitignore, git sees nothing new: the database and the
// idempotency sealing key it created are ignored, so `git add -A` cannot
// commit the key.
func TestDefaultIdempotencyKeyIsIgnoredByGit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	top, err := exec.CommandContext(t.Context(), "git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Fatalf("git rev-parse: %v", err)
	}
	ignore, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(top)), ".gitignore"))
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), "git", append([]string{"-c", "user.name=test", "-c", "user.email=test@example.com"}, args...)...) //nolint:gosec // git with the test's own arguments
		cmd.Dir = repo
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	git("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, ".gitignore"), ignore, 0o600); err != nil {
		t.Fatal(err)
	}
	git("add", ".gitignore")
	git("commit", "-q", "-m", "ignore")

	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	// make run's environment: the defaults (no HSRCPAY_* from outside), the
	// demo account, on free ports.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "HSRCPAY_") {
			env = append(env, kv)
		}
	}
	env = append(env, "HSRCPAY_DEMO_ACCOUNT=acct_demo", "HSRCPAY_ADDR=127.0.0.1:0", "HSRCPAY_METRICS_ADDR=")
	cmd := exec.CommandContext(context.Background(), bin, "serve") //nolint:gosec // the server binary this test built
	cmd.Dir, cmd.Env = repo, env
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var seen string
		for {
			n, err := stdout.Read(buf)
			seen += string(buf[:n])
			if strings.Contains(seen, "export HSRCPAY_ACCOUNT=") || err != nil {
				ready <- seen
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
	}()
	select {
	case out := <-ready:
		if !strings.Contains(out, "export HSRCPAY_ACCOUNT=") {
			t.Fatalf("serve did not print the demo keys:\n%s", out)
		}
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("serve printed no demo keys within 60s")
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("serve after SIGTERM: %v", err)
	}

	// What the run created, where the defaults put it.
	kind, loc, err := config.ParseDatabaseURL(config.Defaults().DatabaseURL)
	if err != nil || kind != config.SQLite {
		t.Fatalf("default store %q: %v", config.Defaults().DatabaseURL, err)
	}
	keyFile := filepath.Clean(loc) + ".idempotency.key"
	for _, p := range []string{keyFile, filepath.Join(loc, "live.db")} {
		if _, err := os.Stat(filepath.Join(repo, p)); err != nil {
			t.Fatalf("the run did not create %s: %v", p, err)
		}
	}
	if st := git("status", "--porcelain", "--untracked-files=all", "--ignored=no"); st != "" {
		t.Fatalf("git sees what the run created (git add -A would commit it):\n%s", st)
	}
	git("check-ignore", "-q", keyFile) // exits 1 (a failure above) when not ignored
}
