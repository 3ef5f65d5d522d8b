//go:build unix

package server_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/testenv"
)

// chromiumBin is the headless browser; HSRCPAY_CHROMIUM overrides it.
func chromiumBin() string {
	if p := os.Getenv("HSRCPAY_CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// requestLog records the paths a browser asks for.
type requestLog struct {
	mu    sync.Mutex
	paths map[string]int
	next  http.Handler
}

func (l *requestLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	l.paths[r.URL.Path]++
	l.mu.Unlock()
	l.next.ServeHTTP(w, r)
}

// TestDocsRenderInChromium loads /docs in headless Chromium with no network
// but this server and checks that Redoc rendered both operations and their
// responses. CI sets HSRCPAY_REQUIRE_CHROMIUM=1 (.ci/docs/install-chromium.sh
// installs the browser), so a missing browser fails there instead of skipping.
func TestDocsRenderInChromium(t *testing.T) {
	bin := chromiumBin()
	if _, err := os.Stat(bin); err != nil {
		msg := bin + " not found: cannot check that /docs renders (install it with .ci/docs/install-chromium.sh, or point HSRCPAY_CHROMIUM at a Chromium)"
		if os.Getenv("HSRCPAY_REQUIRE_CHROMIUM") == "1" {
			t.Fatal(msg + "; HSRCPAY_REQUIRE_CHROMIUM=1")
		}
		t.Skip(msg)
	}
	env := testenv.New(t, testenv.Config{})
	log := &requestLog{paths: map[string]int{}, next: env.Server}
	hs := httptest.NewServer(log)
	defer hs.Close()

	dom, stderr := runChromium(t, bin, "--enable-logging=stderr", "--v=0", "--virtual-time-budget=15000", "--dump-dom", hs.URL+"/docs")

	var problems []string
	if strings.Contains(dom, "Something went wrong") {
		problems = append(problems, "Redoc reported an error")
	}
	var summaries []string // every operation the spec declares
	for _, r := range hxLoadSpec(t).routes {
		summaries = append(summaries, r.Operation.Summary)
	}
	if len(summaries) < 7 {
		t.Fatalf("the spec lists %d operations", len(summaries))
	}
	for _, op := range summaries {
		if !strings.Contains(dom, op) {
			problems = append(problems, "rendered page lacks the operation "+op)
		}
	}
	for _, code := range []string{"200", "201", "400", "401", "403", "404", "409", "422", "429", "500"} {
		// A response heading (<strong>422 </strong>) or sample tab (>422<).
		if !regexp.MustCompile(`>\s*` + code + `\s*<`).MatchString(dom) {
			problems = append(problems, "rendered page lacks response "+code)
		}
	}
	// The CSP refuses nothing Redoc needs: the only violation expected is the
	// Redocly logo it would load from a CDN (it hides the image on error).
	for _, line := range strings.Split(stderr, "\n") {
		if strings.Contains(line, "Content Security Policy") && !strings.Contains(line, "https://cdn.redoc.ly/redoc/logo-mini.svg") {
			problems = append(problems, "CSP violation: "+line)
		}
	}
	// The page fetched its bundle and the spec from this server, and nothing
	// else here.
	log.mu.Lock()
	allowed := map[string]bool{"/docs": true, "/docs/redoc.standalone.js": true, "/openapi.json": true}
	var got []string
	for p := range log.paths {
		got = append(got, p)
		if !allowed[p] {
			problems = append(problems, "the page requested "+p)
		}
	}
	sort.Strings(got)
	for p := range allowed {
		if log.paths[p] == 0 {
			problems = append(problems, fmt.Sprintf("the page never requested %s (requested: %v)", p, got))
		}
	}
	log.mu.Unlock()
	if len(problems) > 0 {
		t.Logf("chromium stderr (tail):\n%s", tail(stderr, 3000))
		t.Logf("DOM (head):\n%.3000s", dom)
		for _, p := range problems {
			t.Error(p)
		}
	}
}

// runChromium runs headless Chromium with args and returns its stdout and
// stderr. It is killed, with every process it started, after 60 s.
func runChromium(t *testing.T, bin string, args ...string) (stdout, stderr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	tmp := t.TempDir()
	base := []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		// Without these it tries to reach Google's services and hangs on a closed network.
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + tmp,
	}
	cmd := exec.CommandContext(ctx, bin, append(base, args...)...) //nolint:gosec // the Chromium found for the test, with the test's own flags
	cmd.Env = append(os.Environ(), "HOME="+tmp, "XDG_CONFIG_HOME="+tmp, "XDG_CACHE_HOME="+tmp)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	// Chromium starts helper processes; put them in one group to kill together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // stragglers, if any
	}
	t.Logf("chromium %s ran in %v", args[len(args)-1], time.Since(start).Round(time.Millisecond))
	if ctx.Err() != nil {
		t.Fatalf("chromium did not finish within 60 s (killed)\nstderr:\n%s", tail(errb.String(), 2000))
	}
	if err != nil {
		t.Fatalf("chromium: %v\nstderr:\n%s", err, tail(errb.String(), 2000))
	}
	return out.String(), errb.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
