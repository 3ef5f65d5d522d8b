// Command testsummary reads `go test -json` on stdin and prints what plain
// `go test` prints (each package's ok/FAIL line, the output of failing
// tests, build errors), then every skipped test with its skip message, then
// one closing line "tests: N passed, N failed, N skipped".
//
// It exits 1 when a test or package failed, or when a test skipped for a
// service that the environment makes mandatory: with HSRCPAY_REQUIRE_REDIS=1
// a skip whose message names Redis fails the run, and likewise for
// PostgreSQL, Chromium and tmpfs. The helpers that find those services
// already fail instead of skipping under the same switches; this catches a
// test that probes a service by itself and skips anyway.
//
// `make test` runs: set -o pipefail; go test -json ./... | go run ./internal/testsummary
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strings"
)

// required maps each REQUIRE switch to the words a skip message for that
// missing service contains.
var required = []struct {
	env string
	re  *regexp.Regexp
}{
	{"HSRCPAY_REQUIRE_POSTGRES", regexp.MustCompile(`(?i)postgres`)},
	{"HSRCPAY_REQUIRE_REDIS", regexp.MustCompile(`(?i)redis`)},
	{"HSRCPAY_REQUIRE_CHROMIUM", regexp.MustCompile(`(?i)chrom`)},
	{"HSRCPAY_REQUIRE_TMPFS", regexp.MustCompile(`(?i)tmpfs`)},
}

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Getenv))
}

// event is one line of `go test -json` (cmd/test2json), build events included.
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output, build-fail
	Test       string
	Output     string
}

type skip struct{ pkg, test, msg string }

type key struct{ pkg, test string }

func run(in io.Reader, out io.Writer, getenv func(string) string) int {
	w := bufio.NewWriter(out)
	defer func() { _ = w.Flush() }() // stdout: nothing to do about a failed write
	var (
		buf                   = map[key][]string{} // output of tests still running
		skips                 []skip
		passed, failed, nSkip int
		failure               bool
		sc                    = bufio.NewScanner(in)
	)
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil || e.Action == "" {
			_, _ = fmt.Fprintf(w, "%s\n", line) // not an event: go test's own words
			continue
		}
		k := key{e.Package, e.Test}
		switch {
		case e.Action == "build-output":
			_, _ = io.WriteString(w, e.Output)
		case e.Action == "build-fail":
			failure = true
		case e.Test == "" && e.Action == "output":
			// The package's lines: "ok  pkg 1.2s", "FAIL pkg", "? pkg [no test files]",
			// panics outside a test. Plain go test does not print a passing package's "PASS".
			if e.Output != "PASS\n" {
				_, _ = io.WriteString(w, e.Output)
			}
		case e.Test == "" && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip"):
			// The package ended: a test still running was cut short (panic, timeout).
			for bk, lines := range buf {
				if bk.pkg == e.Package {
					if e.Action == "fail" {
						writeOutput(w, lines)
					}
					delete(buf, bk)
				}
			}
			if e.Action == "fail" {
				failure = true
			}
		case e.Test == "":
		case e.Action == "output":
			buf[k] = append(buf[k], e.Output)
		case e.Action == "pass":
			passed++
			delete(buf, k)
		case e.Action == "fail":
			failed++
			failure = true
			writeOutput(w, buf[k])
			delete(buf, k)
		case e.Action == "skip":
			nSkip++
			skips = append(skips, skip{e.Package, e.Test, skipMessage(buf[k])})
			delete(buf, k)
		}
	}
	if err := sc.Err(); err != nil {
		_, _ = fmt.Fprintf(w, "testsummary: reading go test -json: %v\n", err)
		failure = true
	}

	sort.SliceStable(skips, func(i, j int) bool {
		if skips[i].pkg != skips[j].pkg {
			return skips[i].pkg < skips[j].pkg
		}
		return skips[i].test < skips[j].test
	})
	var mandatory []string
	if len(skips) > 0 {
		_, _ = fmt.Fprintf(w, "\n== %d skipped tests, and why:\n", len(skips))
		for _, s := range skips {
			_, _ = fmt.Fprintf(w, "SKIP %s %s: %s\n", s.pkg, s.test, s.msg)
			for _, r := range required {
				if getenv(r.env) == "1" && r.re.MatchString(s.msg) {
					mandatory = append(mandatory, fmt.Sprintf("%s %s (%s=1)", s.pkg, s.test, r.env))
				}
			}
		}
	}
	if len(mandatory) > 0 {
		failure = true
		_, _ = fmt.Fprintf(w, "\n== FAIL: %d tests skipped for a service the environment makes mandatory:\n", len(mandatory))
		for _, m := range mandatory {
			_, _ = fmt.Fprintf(w, "%s\n", m)
		}
	}
	_, _ = fmt.Fprintf(w, "\ntests: %d passed, %d failed, %d skipped\n", passed, failed, nSkip)
	if failure {
		return 1
	}
	return 0
}

// writeOutput prints a failed test's output as plain go test does: its
// "--- FAIL" line first, then what it logged, without the === RUN/PAUSE/
// CONT/NAME lines that -json's verbose mode adds.
func writeOutput(w io.Writer, lines []string) {
	head := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "--- FAIL") {
			head = i
			_, _ = io.WriteString(w, l)
			break
		}
	}
	for i, l := range lines {
		if i != head && !strings.HasPrefix(l, "=== ") {
			_, _ = io.WriteString(w, l)
		}
	}
}

// skipMessage is what the test logged before it skipped (t.Skip's message
// among it), on one line.
func skipMessage(lines []string) string {
	var parts []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		parts = append(parts, t)
	}
	if len(parts) == 0 {
		return "(no message)"
	}
	return strings.Join(parts, " / ")
}
