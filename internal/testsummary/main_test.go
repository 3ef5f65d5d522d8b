package main

import (
	"os"
	"strings"
	"testing"
)

// The fixtures are real `go test -json` output (times removed) of small
// packages: fail.json has a passing, a failing and a skipped test and a
// skipped subtest; skip.json the same without the failing one; crash.json a
// package that does not build and a test that panics.
func summarize(t *testing.T, fixture string, env map[string]string) (string, int) {
	t.Helper()
	f, err := os.DirFS("testdata").Open(fixture)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }() // read only
	var out strings.Builder
	code := run(f, &out, func(k string) string { return env[k] })
	return out.String(), code
}

func TestFailuresShownPassesQuiet(t *testing.T) {
	out, code := summarize(t, "fail.json", nil)
	if code != 1 {
		t.Errorf("exit %d with a failing test, want 1", code)
	}
	for _, want := range []string{
		"--- FAIL: TestFail (0.00s)\n    p_test.go:4: context\n    p_test.go:4: boom\n",
		"FAIL\ttsx/p\t0.002s\n",
		"?   \ttsx/q\t[no test files]\n",
		"SKIP tsx/p TestSkip: p_test.go:5: Redis not reachable at x: skipping\n",
		"SKIP tsx/p TestSub/a: p_test.go:6: short\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, not := range []string{"quiet", "=== RUN", "--- PASS", "--- SKIP"} {
		if strings.Contains(out, not) {
			t.Errorf("output has %q (a passing test's output or verbose noise):\n%s", not, out)
		}
	}
	if !strings.HasSuffix(out, "\ntests: 3 passed, 1 failed, 2 skipped\n") {
		t.Errorf("closing line:\n%s", out)
	}
}

func TestSkipsFailOnlyForRequiredServices(t *testing.T) {
	out, code := summarize(t, "skip.json", nil)
	if code != 0 || !strings.Contains(out, "ok  \ttsx/p\t") || strings.Contains(out, "PASS\n") {
		t.Errorf("exit %d without failures or REQUIRE switches, want 0:\n%s", code, out)
	}
	if !strings.HasSuffix(out, "\ntests: 3 passed, 0 failed, 2 skipped\n") {
		t.Errorf("closing line:\n%s", out)
	}
	// TestSkip's message names Redis: mandatory under HSRCPAY_REQUIRE_REDIS=1.
	out, code = summarize(t, "skip.json", map[string]string{"HSRCPAY_REQUIRE_REDIS": "1"})
	if code != 1 || !strings.Contains(out, "tsx/p TestSkip (HSRCPAY_REQUIRE_REDIS=1)") || strings.Contains(out, "TestSub/a (") {
		t.Errorf("exit %d under HSRCPAY_REQUIRE_REDIS=1, want 1 naming TestSkip alone:\n%s", code, out)
	}
	// The other switches do not make a Redis skip fatal.
	_, code = summarize(t, "skip.json", map[string]string{"HSRCPAY_REQUIRE_POSTGRES": "1", "HSRCPAY_REQUIRE_CHROMIUM": "1", "HSRCPAY_REQUIRE_TMPFS": "1"})
	if code != 0 {
		t.Errorf("exit %d: a Redis skip failed the run without HSRCPAY_REQUIRE_REDIS", code)
	}
}

func TestBuildFailuresAndPanicsShown(t *testing.T) {
	out, code := summarize(t, "crash.json", nil)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for _, want := range []string{
		"b/b_test.go:3:28: undefined: undefinedThing\n",
		"FAIL\ttsx/b [build failed]\n",
		"--- FAIL: TestPanics (0.00s)\n    r_test.go:3: before\npanic: kaboom",
		"FAIL\ttsx/r\t0.004s\n",
		"tests: 0 passed, 1 failed, 0 skipped\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

func TestNonJSONLinesPassThrough(t *testing.T) {
	var out strings.Builder
	code := run(strings.NewReader("go: downloading x v1.0.0\n"), &out, func(string) string { return "" })
	if code != 0 || !strings.HasPrefix(out.String(), "go: downloading x v1.0.0\n") {
		t.Errorf("exit %d, output %q", code, out.String())
	}
}
