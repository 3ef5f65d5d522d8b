// Package readme tests the README: the quickstart's shell blocks run in
// order against a server started as `make run` starts it, on a port of the
// system's choosing, and every command must answer what its comment says.
package readme

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// blocks returns the ```sh blocks of the README between two headings.
func blocks(t *testing.T, readme, from, to string) []string {
	t.Helper()
	i, j := strings.Index(readme, from), strings.Index(readme, to)
	if i < 0 || j < i {
		t.Fatalf("README lacks %q … %q", from, to)
	}
	var out []string
	re := regexp.MustCompile("(?s)```sh\n(.*?)```")
	for _, m := range re.FindAllStringSubmatch(readme[i:j], -1) {
		out = append(out, m[1])
	}
	return out
}

// expected lists the statuses a block's comments promise, in order ("→ 201").
func expected(block string) []string {
	var out []string
	re := regexp.MustCompile(`→ (\d{3})`)
	for _, line := range strings.Split(block, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // frees the port for its user
	return l.Addr().(*net.TCPAddr).Port
}

// curlWrapper records each curl's status, per block, and passes the body on,
// so that `X=$(curl … | sed …)` in the README works as written.
const curlWrapper = `
curl() {
  local out
  out=$(command curl -sS -w '\n%{http_code}' "$@") || return $?
  printf '%s\n' "${out%$'\n'*}"
  printf '%s %s\n' "$README_BLOCK" "${out##*$'\n'}" >> "$README_STATUSES"
}
`

func TestQuickstart(t *testing.T) {
	for _, tool := range []string{"make", "bash", "curl", "sed"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(root, "README.md")) //nolint:gosec // this repository's README
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	all := blocks(t, readme, "## Quickstart", "## Using the Go client")
	if len(all) < 4 || !strings.Contains(all[0], "make run") {
		t.Fatalf("the quickstart's first block should be make run/make test; found %d blocks", len(all))
	}
	examples := all[1:] // the first block is the two commands themselves

	// The server, started as `make run` starts it, on a free port and a
	// fresh data directory (the developer's ./data is left alone).
	data := t.TempDir()
	env := append(os.Environ(),
		fmt.Sprintf("HSRCPAY_ADDR=127.0.0.1:%d", freePort(t)),
		"HSRCPAY_METRICS_ADDR=127.0.0.1:0",
		"HSRCPAY_DATABASE_URL=sqlite:"+data,
	)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	run := exec.CommandContext(ctx, "make", "--no-print-directory", "run")
	run.Dir, run.Env = root, env
	run.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // make's child is the server: stop both
	run.Cancel = func() error { return syscall.Kill(-run.Process.Pid, syscall.SIGTERM) }
	stdout, err := run.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var serverLog strings.Builder
	run.Stderr = &serverLog
	if err := run.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		_ = run.Wait()
	}()
	exports := map[string]string{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export HSRCPAY_") {
			exports[k] = v
			if k == "HSRCPAY_ACCOUNT" {
				break
			}
		}
	}
	for _, k := range []string{"HSRCPAY_API_URL", "HSRCPAY_API_KEY", "HSRCPAY_KEY_ID", "HSRCPAY_PUBLISHABLE_KEY", "HSRCPAY_ACCOUNT"} {
		if exports[k] == "" {
			t.Fatalf("make run printed no export line for %s (server log: %s)", k, serverLog.String())
		}
	}
	go func() { // keep draining, so the server never blocks on its stdout
		for sc.Scan() {
		}
	}()

	// Every example block, in order, in one shell: a block may export what
	// the next one uses (the rotated key), as a reader's shell would.
	statuses := filepath.Join(t.TempDir(), "statuses")
	var script strings.Builder
	script.WriteString("set -euo pipefail\n" + curlWrapper)
	for k, v := range exports {
		fmt.Fprintf(&script, "export %s=%s\n", k, v)
	}
	for i, b := range examples {
		fmt.Fprintf(&script, "README_BLOCK=%d\necho '::: block %d'\n%s\n", i, i, b)
	}
	sh := exec.CommandContext(ctx, "bash", "-c", script.String()) //nolint:gosec // runs the README's own examples: the point of the test
	sh.Dir = root
	sh.Env = append(env, "README_STATUSES="+statuses)
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("a README example failed: %v\n%s", err, tail(string(out), 3000))
	}
	got := map[int][]string{}
	if b, err := os.ReadFile(statuses); err == nil { //nolint:gosec // a file in the test's temp dir
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if blk, st, ok := strings.Cut(line, " "); ok {
				n, _ := strconv.Atoi(blk)
				got[n] = append(got[n], st)
			}
		}
	}
	for i, b := range examples {
		if want := expected(b); strings.Join(got[i], " ") != strings.Join(want, " ") {
			t.Errorf("block %d answered %v, its comments promise %v\n%s\noutput:\n%s", i, got[i], want, b, tail(string(out), 2000))
		}
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
