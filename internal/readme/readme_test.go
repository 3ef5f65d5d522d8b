// Package readme tests the documentation: every shell block of README.md and
// of docs/*.md runs, page by page and in order, against a server started as
// `make run` starts it (a port of the system's choosing, a fresh data
// directory), and every command must answer what its comment says: each
// curl's status against the `→ NNN` in its comments, every other command exit
// 0. A block that cannot run says why in a `<!-- not run: why -->` comment
// on the line before it; a block that needs PostgreSQL and Redis says so with
// `<!-- needs: postgres redis -->` and runs on its own, on the tests' own
// database and Redis, or skips visibly. The settings table of
// docs/configuration.md and the error-code table of docs/api.md are held to
// their sources here too (docs_tables_test.go).
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
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

// A block is one fenced shell block of a page.
type block struct {
	page   string // README.md, docs/api.md, …
	line   int    // of its opening fence, 1-based
	code   string
	notRun string // the reason given in <!-- not run: … -->, "" when it runs
	needs  string // "postgres redis" from <!-- needs: … -->
}

func (b block) String() string { return fmt.Sprintf("%s:%d", b.page, b.line) }

var (
	fenceRE  = regexp.MustCompile("^```(sh|bash|shell|console)\\b")
	notRunRE = regexp.MustCompile(`^<!-- not run: (.+?) -->$`)
	needsRE  = regexp.MustCompile(`^<!-- needs: (.+?) -->$`)
)

// blocksOf returns every shell block of a page, with the marker comment on
// the line before it, if any.
func blocksOf(t *testing.T, root, page string) []block {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(root, page)) //nolint:gosec // this repository's own documentation
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(raw), "\n")
	var out []block
	for i := 0; i < len(lines); i++ {
		if !fenceRE.MatchString(lines[i]) {
			if strings.HasPrefix(lines[i], "```") && len(lines[i]) > 3 { // another language: skip its body
				for i++; i < len(lines) && lines[i] != "```"; i++ {
				}
			} else if lines[i] == "```" { // an output listing, no language
				for i++; i < len(lines) && lines[i] != "```"; i++ {
				}
			}
			continue
		}
		b := block{page: page, line: i + 1}
		if i > 0 {
			if m := notRunRE.FindStringSubmatch(lines[i-1]); m != nil {
				b.notRun = m[1]
			}
			if m := needsRE.FindStringSubmatch(lines[i-1]); m != nil {
				b.needs = m[1]
			}
		}
		var code []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			code = append(code, lines[i])
		}
		b.code = strings.Join(code, "\n") + "\n"
		out = append(out, b)
	}
	return out
}

// expected lists the statuses a block's comments promise, in order ("→ 201").
func expected(code string) []string {
	var out []string
	re := regexp.MustCompile(`→ (\d{3})`)
	for _, line := range strings.Split(code, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || strings.TrimSpace(line[:i]) == "" || line[i-1] == ' ') {
			for _, m := range re.FindAllStringSubmatch(line[i:], -1) {
				out = append(out, m[1])
			}
		}
	}
	return out
}

func freePort(ctx context.Context, t *testing.T) int {
	t.Helper()
	l, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // frees the port for its user
	return l.Addr().(*net.TCPAddr).Port
}

// curlWrapper records the status of each curl that prints one (the pages'
// style: -w '%{stderr}\n%{http_code}\n', the status as the last line on
// stderr), per block, and passes body and stderr on unchanged, so that
// `X=$(curl … | jq …)` works as written. A curl without %{http_code} (a
// readiness poll) is not recorded.
const curlWrapper = `
curl() {
  case "$*" in *'%{http_code}'*) ;; *) command curl "$@"; return $? ;; esac
  local err rc=0
  err=$(mktemp)
  command curl "$@" 2>"$err" || rc=$?
  cat "$err" >&2
  printf '%s %s\n' "$DOC_BLOCK" "$(tail -n 1 "$err")" >> "$DOC_STATUSES"
  rm -f "$err"
  return $rc
}
`

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// startServer starts the server as `make run` does, on a free port and a
// fresh data directory (the developer's ./data is left alone), and returns
// the environment its export lines set up plus the server's own.
func startServer(t *testing.T, ctx context.Context, root string) []string {
	t.Helper()
	data := t.TempDir()
	env := append(os.Environ(),
		fmt.Sprintf("HSRCPAY_ADDR=127.0.0.1:%d", freePort(ctx, t)),
		fmt.Sprintf("HSRCPAY_METRICS_ADDR=127.0.0.1:%d", freePort(ctx, t)),
		"HSRCPAY_DATABASE_URL=sqlite:"+filepath.Join(data, "data"),
	)
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
	t.Cleanup(func() {
		_ = syscall.Kill(-run.Process.Pid, syscall.SIGTERM)
		_ = run.Wait()
	})
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
		env = append(env, k+"="+exports[k])
	}
	go func() { // keep draining, so the server never blocks on its stdout
		for sc.Scan() {
		}
	}()
	return env
}

// runBlocks runs blocks in order in one shell (a block may export what the
// next one uses, as a reader's shell would) and checks every promised status.
func runBlocks(t *testing.T, ctx context.Context, root string, env []string, blocks []block) {
	t.Helper()
	statuses := filepath.Join(t.TempDir(), "statuses")
	var script strings.Builder
	script.WriteString("set -euo pipefail\n" + curlWrapper)
	for i, b := range blocks {
		fmt.Fprintf(&script, "DOC_BLOCK=%d\necho '::: %s'\n%s\n", i, b, b.code)
	}
	sh := exec.CommandContext(ctx, "bash", "-c", script.String()) //nolint:gosec // runs the documentation's own examples: the point of the test
	sh.Dir = root
	sh.Env = append(env, "DOC_STATUSES="+statuses)
	sh.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // servers a block starts in the background die with it
	sh.Cancel = func() error { return syscall.Kill(-sh.Process.Pid, syscall.SIGKILL) }
	t.Cleanup(func() {
		if sh.Process != nil {
			_ = syscall.Kill(-sh.Process.Pid, syscall.SIGTERM)
		}
	})
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("an example failed: %v\n%s", err, tail(string(out), 4000))
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
	for i, b := range blocks {
		if want := expected(b.code); strings.Join(got[i], " ") != strings.Join(want, " ") {
			t.Errorf("%s answered %v, its comments promise %v\n%s\noutput:\n%s", b, got[i], want, b.code, tail(string(out), 3000))
		}
	}
}

// pages returns README.md and every docs/*.md, in that order.
func pages(t *testing.T, root string) []string {
	t.Helper()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	out := []string{"README.md"}
	for _, d := range docs {
		out = append(out, filepath.Join("docs", filepath.Base(d)))
	}
	sort.Strings(out[1:])
	return out
}

// TestDocumentationBlocks runs every page's blocks. The README's quickstart
// and CLI tour run first (TestDocumentationBlocks/README.md), then each docs
// page against a server of its own.
func TestDocumentationBlocks(t *testing.T) {
	for _, tool := range []string{"make", "bash", "curl", "jq", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the documentation's examples need %s: %v", tool, err)
		}
	}
	root := repoRoot(t)
	var ran, notRun, needs int
	for _, page := range pages(t, root) {
		all := blocksOf(t, root, page)
		var plain []block
		for _, b := range all {
			switch {
			case b.notRun != "":
				notRun++
				t.Logf("not run: %s: %s", b, b.notRun)
			case b.needs != "":
				needs++
			default:
				plain = append(plain, b)
			}
		}
		ran += len(plain)
		t.Run(page, func(t *testing.T) {
			if len(plain) > 0 {
				ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
				defer cancel()
				runBlocks(t, ctx, root, pageEnv(t, ctx, root, plain), plain)
			}
			for _, b := range all {
				if b.needs != "" {
					t.Run(fmt.Sprintf("needs-%s-line%d", strings.ReplaceAll(b.needs, " ", "-"), b.line), func(t *testing.T) { runWithServices(t, root, b) })
				}
			}
		})
	}
	t.Logf("shell blocks: %d run against a SQLite server, %d need PostgreSQL and Redis, %d not run", ran, needs, notRun)
	// Few blocks may be left out: each one is an example nobody checks.
	if notRun > 3 {
		t.Errorf("%d blocks are marked not run; keep them few (at most 3)", notRun)
	}
}

// pageEnv starts a server for a page whose blocks talk to one (they name
// $HSRCPAY_API_URL); a page whose blocks only run the binaries (--help, go doc)
// gets `make build` instead, so that bin/ exists as `make run` would leave it.
func pageEnv(t *testing.T, ctx context.Context, root string, blocks []block) []string {
	t.Helper()
	for _, b := range blocks {
		if strings.Contains(b.code, "HSRCPAY_API_URL") {
			return startServer(t, ctx, root)
		}
	}
	build := exec.CommandContext(ctx, "make", "--no-print-directory", "build")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}
	return os.Environ()
}

// runWithServices runs a block that needs PostgreSQL and Redis on its own,
// with the tests' own database (a fresh one) and Redis, a deployment name of
// its own (its invalidations reach no other test's replicas) and free ports
// for the replicas it starts; it skips, visibly, when they are not reachable
// (or fails, with HSRCPAY_REQUIRE_POSTGRES/REDIS=1).
func runWithServices(t *testing.T, root string, b block) {
	for _, need := range strings.Fields(b.needs) {
		if need != "postgres" && need != "redis" {
			t.Fatalf("%s needs %q: only postgres and redis are known", b, need)
		}
	}
	redisURL := testredis.URL(t) // first: a skip then makes no database
	db := storetest.FreshPostgresDB(t)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	env := append(os.Environ(),
		"HSRCPAY_TEST_POSTGRES_URL="+db,
		"HSRCPAY_TEST_REDIS_URL="+redisURL,
		fmt.Sprintf("HSRCPAY_DEPLOYMENT=docs-%d", time.Now().UnixNano()%1_000_000_000),
		"HSRCPAY_IDEMPOTENCY_KEY_FILE="+filepath.Join(t.TempDir(), "idempotency.key"),
		fmt.Sprintf("REPLICA_A=127.0.0.1:%d", freePort(ctx, t)),
		fmt.Sprintf("REPLICA_B=127.0.0.1:%d", freePort(ctx, t)),
		fmt.Sprintf("METRICS_A=127.0.0.1:%d", freePort(ctx, t)),
		fmt.Sprintf("METRICS_B=127.0.0.1:%d", freePort(ctx, t)),
		"TMPDIR="+t.TempDir(), // the replicas' logs
		// The replicas it stops need not drain for 5 s: no load balancer here.
		"HSRCPAY_SHUTDOWN_DRAIN=0s",
	)
	runBlocks(t, ctx, root, env, []block{b})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
