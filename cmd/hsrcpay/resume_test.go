package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// answerLost sends each request and loses its answer: the server carries
// the call out, the CLI never hears of it.
type answerLost struct{}

func (answerLost) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	_ = res.Body.Close() // the answer, and the secret in it, is lost
	return nil, io.ErrUnexpectedEOF
}

// cliLossy runs the command with every answer lost and a short retry budget.
func cliLossy(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	a := &app{getenv: func(k string) string { return env[k] }, stdout: &out, stderr: &errb,
		conn: conn{opts: []client.Option{client.WithHTTPClient(&http.Client{Transport: answerLost{}}), client.WithRetryBudget(300 * time.Millisecond)}}}
	code = a.run(args)
	return code, out.String(), errb.String()
}

var resumeLine = regexp.MustCompile(`(?m)^    (hsrcpay keys \w+ .*)$`)

// TestUnresolvedCallPrintsHowToResume: a create and a regenerate whose
// answers are lost print their Idempotency-Key and the command that resumes
// them (no token in it); that command prints the key and secret the lost
// call made, and makes no other.
func TestUnresolvedCallPrintsHowToResume(t *testing.T) {
	e, m, env := setup(t)
	env["HSRCPAY_API_KEY"] = m.Secret
	code, out, errOut := cliLossy(t, env, "keys", "create", "--account", account, "--name", "it's lost",
		"--permission", "payment:read", "--metadata", "team=a b", "--json")
	wantCode(t, code, exitError, out, errOut)
	if out != "" {
		t.Errorf("stdout on failure: %q", out)
	}
	contains(t, "stderr", errOut, "outcome is unknown", "may have been created", "idempotency key: ", "--idempotency-key")
	if strings.Contains(errOut, m.Secret) {
		t.Fatal("stderr shows the token")
	}
	key := regexp.MustCompile(`idempotency key: ([0-9a-f]{32})\n`).FindStringSubmatch(errOut)
	line := resumeLine.FindStringSubmatch(errOut)
	if key == nil || line == nil {
		t.Fatalf("no key or resume command in:\n%s", errOut)
	}
	want := `hsrcpay keys create --account acct_cli --name 'it'\''s lost' --permission payment:read --metadata 'team=a b' --json --idempotency-key ` + key[1]
	if line[1] != want {
		t.Fatalf("resume command\n%s\nwant\n%s", line[1], want)
	}
	// Resume as printed (the shell would have unquoted these).
	args := []string{"keys", "create", "--account", account, "--name", "it's lost", "--permission", "payment:read",
		"--metadata", "team=a b", "--json", "--idempotency-key", key[1]}
	var first, again client.APIKey
	for _, k := range []*client.APIKey{&first, &again} {
		code, out, errOut = cli(t, env, args...)
		wantCode(t, code, exitOK, out, errOut)
		if err := json.Unmarshal([]byte(out), k); err != nil {
			t.Fatal(err)
		}
	}
	if first.ID != again.ID || first.Key != again.Key || first.Key == "" {
		t.Fatalf("resumed twice: %s, %s", first.ID, again.ID)
	}
	keys, err := client.Collect(e.Client(m.Secret).ListAPIKeys(context.Background(), account, client.ListAPIKeysOptions{Managed: client.Ptr(false)}))
	if err != nil || len(keys) != 1 || keys[0].ID != first.ID {
		t.Fatalf("keys %v %v, want only %s", keys, err, first.ID)
	}

	// A regenerate.
	code, out, errOut = cliLossy(t, env, "keys", "regenerate", "--grace-period", "1h", m.PublishableID)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "stderr", errOut, "may have been rotated", "hsrcpay keys regenerate --grace-period 1h0m0s "+m.PublishableID+" --idempotency-key ")
	key = regexp.MustCompile(`idempotency key: ([0-9a-f]{32})\n`).FindStringSubmatch(errOut)
	if key == nil {
		t.Fatalf("no key in:\n%s", errOut)
	}
	code, out, errOut = cli(t, env, "keys", "regenerate", "--grace-period", "1h0m0s", m.PublishableID, "--idempotency-key", key[1])
	wantCode(t, code, exitOK, out, errOut)
	contains(t, "stdout", out, "Regenerated API key "+m.PublishableID, "The previous secret keeps working until")
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"acct_demo":             "acct_demo",
		"payment:read":          "payment:read",
		"2030-01-01T00:00:00Z":  "2030-01-01T00:00:00Z",
		"Checkout backend":      "'Checkout backend'",
		"it's":                  `'it'\''s'`,
		"":                      "''",
		"$(rm -rf ~)":           "'$(rm -rf ~)'",
		"a\x1b[2Jb":             `$'a\x1b[2Jb'`,
		"new\nline 'q'":         `$'new\nline \'q\''`,
		"caf\u00e9":             "'café'",
		"zero\u200bwidth space": `$'zero\u200bwidth space'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// A regenerate that never reached the API (nothing listens) is retried,
// then reported as unreachable, without a resume command: nothing was sent.
func TestUnreachableRegenerateHasNothingToResume(t *testing.T) {
	var out, errb bytes.Buffer
	env := map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_x"}
	a := &app{getenv: func(k string) string { return env[k] }, stdout: &out, stderr: &errb,
		conn: conn{opts: []client.Option{client.WithRetryBudget(300 * time.Millisecond)}}}
	code := a.run([]string{"keys", "regenerate", "key_a"})
	wantCode(t, code, exitError, out.String(), errb.String())
	contains(t, "stderr", errb.String(), "cannot reach the API at http://127.0.0.1:1/v1")
	if strings.Contains(errb.String(), "idempotency") {
		t.Errorf("a call that was never sent offers a resume:\n%s", errb.String())
	}
}
