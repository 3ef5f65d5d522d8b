package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/buildinfo"
)

// TestHelpListsCommandsAndTypedFlags: help, --help and -h exit 0 and list
// the commands; each command's help lists its flags with their types (and
// defaults where there is one) and the connection flags.
func TestHelpListsCommandsAndTypedFlags(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errOut := cli(t, nil, args...)
		wantCode(t, code, 0, out, errOut)
		contains(t, strings.Join(args, " "), out,
			"hsrcpay keys create", "hsrcpay keys list", "hsrcpay audit verify", // every command
			"hsrcpay keys ", "hsrcpay audit ", "hsrcpay version", "hsrcpay completion", "hsrcpay help", // the root's own
			"--api-key string", "--api-url string", "HSRCPAY_API_KEY", "HSRCPAY_API_URL", "-v, --version", "Exit codes:")
	}
	for args, want := range map[string][]string{
		"keys list --help":       {"--limit int", "--managed true|false", "--deleted ", "--status string", "--json ", "--api-key string", "Connection flags:"},
		"keys regenerate --help": {"--grace-period duration", "--json ", "--idempotency-key string"},
		"keys verify --help":     {"--permission RESOURCE:ACTION", "--json ", "account:api:key:verify", "KEY \"-\" reads the key"},
		"keys create -h":         {"--permission RESOURCE:ACTION", "--metadata KEY=VALUE", "--account string", "--expires-at string", "--idempotency-key string"},
		"help keys update":       {"--metadata KEY=VALUE", "--clear-metadata ", "--status string"},
		"audit list --help":      {"--limit int", "--action string", "--key-id string"},
		"keys help":              {"hsrcpay keys create", "hsrcpay keys delete"},
		"audit help":             {"hsrcpay audit list", "hsrcpay audit verify"},
		"completion --help":      {"bash", "zsh", "fish", "powershell"},
	} {
		code, out, errOut := cli(t, nil, strings.Fields(args)...)
		wantCode(t, code, 0, out, errOut)
		if errOut != "" {
			t.Errorf("%s: stderr %q", args, errOut)
		}
		contains(t, args, out, want...)
	}
}

// TestVersion: version, --version and -v print the module and the VCS
// revision from the build information.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, out, errOut := cli(t, nil, args...)
		wantCode(t, code, 0, out, errOut)
		contains(t, strings.Join(args, " "), out, "hsrcpay ", "module:", "revision:", "go:")
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/hsrcpay/apikeys", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "2d3ab92c27f0"}, {Key: "vcs.modified", Value: "false"}}}
	got := buildinfo.Format("hsrcpay", bi, true)
	contains(t, "stamped build", got, "hsrcpay v1.4.0\n", "module:   github.com/hsrcpay/apikeys\n", "revision: 2d3ab92c27f0\n")
	if strings.Contains(got, "uncommitted") {
		t.Errorf("a clean build shows uncommitted changes:\n%s", got)
	}
}

// TestCompletion: cobra's completion scripts, and completion of commands and
// of flag values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := cli(t, nil, "completion", shell)
		wantCode(t, code, 0, out, errOut)
		contains(t, "completion "+shell, out, "hsrcpay")
	}
	for args, want := range map[string][]string{
		"__complete ":                      {"keys", "audit", "version"},
		"__complete keys ":                 {"create", "regenerate", "list", "get", "update", "disable", "enable", "delete", "verify"},
		"__complete keys list --status ":   {"active", "inactive", "expired"},
		"__complete keys list --managed ":  {"true", "false"},
		"__complete keys update --status ": {"active", "inactive"},
		"__complete audit list --action ":  {"create", "regenerate", "bootstrap"},
		"__complete help keys ":            {"create", "list"},
	} {
		code, out, errOut := cli(t, nil, strings.Split(args, " ")...) // the trailing "" is the word being completed
		wantCode(t, code, 0, out, errOut)
		contains(t, args, out, want...)
	}
}

// TestParserErrors: what the command-line parser refuses exits 2 (usage),
// with the command and a pointer to its help on stderr.
func TestParserErrors(t *testing.T) {
	for args, want := range map[string][]string{
		"keys list --limit ten --account a":   {`invalid argument "ten"`, "--limit", "hsrcpay keys list --help"},
		"keys regenerate --grace-period 1x k": {"--grace-period", "hsrcpay keys regenerate --help"},
		"keys get --bogus k":                  {"unknown flag: --bogus"},
		"keys":                                {"hsrcpay keys create", "Exit codes:"},
		"keys creat":                          {`unknown command "creat"`, "Did you mean this?\n\tcreate\n"},
		"version extra":                       {`unknown command "extra"`},
		"help keys nothing":                   {`no help for "keys nothing"`},
	} {
		code, out, errOut := cli(t, map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_x"}, strings.Fields(args)...)
		wantCode(t, code, exitUsage, out, errOut)
		if out != "" {
			t.Errorf("%s: stdout %q", args, out)
		}
		contains(t, args, errOut, want...)
	}
}

// listed are the commands the root's help must list, each once, by full
// path: the commands of the groups (keys, audit), then the root's others
// (completion, help, version); and the groups themselves, which it must not
// list (their commands stand for them).
func listed(t *testing.T) (want, groups []string) {
	t.Helper()
	root := (&app{getenv: func(string) string { return "" }, stdout: io.Discard, stderr: io.Discard}).rootCmd()
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if !c.IsAvailableCommand() && c.Name() != "help" {
			continue
		}
		if c.Annotations["group"] == "" {
			want = append(want, c.CommandPath())
			continue
		}
		groups = append(groups, c.CommandPath())
		for _, sub := range c.Commands() {
			want = append(want, sub.CommandPath())
		}
	}
	if len(want) < 14 {
		t.Fatalf("the command tree has only %v", want)
	}
	return want, groups
}

// commandRow matches a line of a help's command list: "  PATH  Short".
var commandRow = regexp.MustCompile(`(?m)^  (hsrcpay(?: [a-z-]+)*) {2,}\S`)

// TestHelpListsEachCommandOnce: the root's help has one list of commands
// (it had two: a written one and cobra's), in which every command appears
// exactly once, the groups' by their full path; a group's help lists each
// of its commands once.
func TestHelpListsEachCommandOnce(t *testing.T) {
	want, groups := listed(t)
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {}} {
		code, out, errOut := cli(t, nil, args...)
		if len(args) == 0 { // no command: the help on stderr, exit 2
			wantCode(t, code, exitUsage, out, errOut)
			out = errOut
		} else {
			wantCode(t, code, 0, out, errOut)
		}
		var rows []string
		for _, m := range commandRow.FindAllStringSubmatch(out, -1) {
			rows = append(rows, m[1])
		}
		for _, path := range want {
			if n := strings.Count("\n"+strings.Join(rows, "\n")+"\n", "\n"+path+"\n"); n != 1 {
				t.Errorf("%v: %q listed %d times, want once:\n%s", args, path, n, out)
			}
		}
		for _, g := range groups {
			if slices.Contains(rows, g) {
				t.Errorf("%v: the group %q is listed besides its commands:\n%s", args, g, out)
			}
		}
		if len(rows) != len(want) {
			t.Errorf("%v: %d command rows, want %d (one per command):\n%s", args, len(rows), len(want), out)
		}
		if n := strings.Count(out, "Available Commands:"); n != 1 {
			t.Errorf("%v: %d command lists, want one:\n%s", args, n, out)
		}
	}
	for _, g := range groups {
		args := append(strings.Fields(strings.TrimPrefix(g, "hsrcpay ")), "--help")
		code, out, errOut := cli(t, nil, args...)
		wantCode(t, code, 0, out, errOut)
		var rows []string
		for _, m := range commandRow.FindAllStringSubmatch(out, -1) {
			rows = append(rows, m[1])
		}
		var mine []string
		for _, path := range want {
			if strings.HasPrefix(path, g+" ") {
				mine = append(mine, path)
			}
		}
		slices.Sort(rows)
		if !slices.Equal(rows, mine) {
			t.Errorf("%v lists %v, want each of %v once", args, rows, mine)
		}
	}
}

// TestNearMissSuggestsTheCommand: a mistyped command, at any level, exits 2
// (nothing was sent) suggesting the nearest command, and only the nearest.
func TestNearMissSuggestsTheCommand(t *testing.T) {
	env := map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_x"}
	for _, tc := range []struct {
		args    string
		suggest string
		not     string // a command as far (Levenshtein 2), not suggested
	}{
		{"keys lst", "list", "get"},
		{"keys lsit", "list", ""},
		{"keys lst --account acct_x", "list", "get"},
		{"keys dlete key_x", "delete", ""},
		{"keys enabel key_x", "enable", ""},
		{"audit verfy --account acct_x", "verify", ""},
		{"audit lst", "list", ""},
		{"kyes list", "keys", ""},
		{"kyes list --account acct_x", "keys", ""},
		{"help keys lst", "list", "get"},
		{"help kyes", "keys", ""},
	} {
		code, out, errOut := cli(t, env, strings.Fields(tc.args)...)
		wantCode(t, code, exitUsage, out, errOut)
		if out != "" {
			t.Errorf("%s: stdout %q", tc.args, out)
		}
		contains(t, tc.args, errOut, "Did you mean this?\n\t"+tc.suggest+"\n", "--help' for usage.")
		if tc.not != "" && strings.Contains(errOut, "\t"+tc.not+"\n") {
			t.Errorf("%s: suggests %q too:\n%s", tc.args, tc.not, errOut)
		}
	}
	// Nothing near: no suggestion, still exit 2.
	code, out, errOut := cli(t, env, "keys", "frobnicate")
	wantCode(t, code, exitUsage, out, errOut)
	if strings.Contains(errOut, "Did you mean") {
		t.Errorf("keys frobnicate: %s", errOut)
	}
}

// TestConnectionFlagsOnEveryCommand: every command takes the connection
// flags (--api-url, --api-key, --timeout) before or after its name, and
// they win over the environment, which points at no server with a wrong
// key and a bad HSRCPAY_TIMEOUT: only the flags make these commands work.
// Every runnable command of the tree must be run here.
func TestConnectionFlagsOnEveryCommand(t *testing.T) {
	e, m, _ := setup(t)
	env := map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_wrong", "HSRCPAY_TIMEOUT": "bogus"}
	conn := []string{"--api-url", e.URL, "--api-key", m.Secret, "--timeout", "1m"}
	ran := map[string]bool{}
	for _, before := range []bool{true, false} {
		run := func(args ...string) string {
			t.Helper()
			full := append(append([]string{}, args...), conn...)
			if before {
				full = append(append([]string{}, conn...), args...)
			}
			code, out, errOut := cli(t, env, full...)
			wantCode(t, code, 0, out, errOut)
			path := []string{"hsrcpay"}
			for _, a := range args {
				if strings.HasPrefix(a, "-") || len(path) == 3 || (len(path) == 2 && path[1] != "keys" && path[1] != "audit") {
					break
				}
				path = append(path, a)
			}
			ran[strings.Join(path, " ")] = true
			return out
		}
		var k client.APIKey
		if err := json.Unmarshal([]byte(run("keys", "create", "--json", "--account", account, "--name", "flags", "--permission", "payment:read")), &k); err != nil {
			t.Fatal(err)
		}
		contains(t, "keys list", run("keys", "list", "--account", account), k.ID)
		contains(t, "keys get", run("keys", "get", k.ID), k.ID)
		contains(t, "keys update", run("keys", "update", "--name", "renamed", k.ID), "renamed")
		run("keys", "disable", k.ID)
		run("keys", "enable", k.ID)
		contains(t, "keys verify", run("keys", "verify", k.Key), "VALID")
		run("keys", "regenerate", m.PublishableID)
		run("keys", "delete", k.ID)
		contains(t, "audit list", run("audit", "list", "--account", account), "create")
		run("audit", "verify", "--account", account)
		contains(t, "version", run("version"), "hsrcpay ")
		contains(t, "completion", run("completion", "bash"), "hsrcpay")
		contains(t, "help", run("help", "keys", "list"), "--account")
		contains(t, "help", run("help"), "--timeout duration")
	}
	want, _ := listed(t)
	for _, path := range want {
		if !ran[path] {
			t.Errorf("%s was not run with the connection flags", path)
		}
	}
}

// TestTimeoutFlag: --timeout (else $HSRCPAY_TIMEOUT) ends a command whose
// server does not answer, with exit 1 and the timeout said; a bad value is
// a usage error naming the flag or variable, and nothing is sent.
func TestTimeoutFlag(t *testing.T) {
	release := make(chan struct{})
	var sent atomic.Int32
	hang := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		sent.Add(1)
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(hang.Close)
	t.Cleanup(func() { close(release) }) // before Close, which waits for the handlers
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
	}{
		{"flag", map[string]string{}, []string{"keys", "get", "--timeout", "300ms", "key_x"}},
		{"flag before", map[string]string{}, []string{"--timeout", "300ms", "keys", "list", "--account", "acct_x"}},
		{"variable", map[string]string{"HSRCPAY_TIMEOUT": "300ms"}, []string{"audit", "verify", "--account", "acct_x"}},
		{"flag over variable", map[string]string{"HSRCPAY_TIMEOUT": "1h"}, []string{"keys", "get", "key_x", "--timeout", "300ms"}},
	} {
		env := map[string]string{"HSRCPAY_API_URL": hang.URL + "/v1", "HSRCPAY_API_KEY": "sk_test_x"}
		for k, v := range tc.env {
			env[k] = v
		}
		type result struct {
			code        int
			out, errOut string
		}
		done := make(chan result, 1)
		go func() {
			var r result
			r.code, r.out, r.errOut = cli(t, env, tc.args...)
			done <- r
		}()
		select {
		case r := <-done:
			wantCode(t, r.code, exitError, r.out, r.errOut)
			contains(t, tc.name, r.errOut, "timeout")
		case <-time.After(20 * time.Second): // the client's own limits would take 30s and more
			t.Fatalf("%s: %v still waiting after 20s: the time limit was not applied", tc.name, tc.args)
		}
	}
	if sent.Load() == 0 {
		t.Fatal("no request reached the server: the timeouts above were not the server's")
	}
	before := sent.Load()
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"keys", "get", "--timeout", "-1s", "key_x"}, "--timeout -1s"},
		{nil, []string{"keys", "get", "--timeout", "soon", "key_x"}, `invalid argument "soon"`},
		{map[string]string{"HSRCPAY_TIMEOUT": "soon"}, []string{"keys", "get", "key_x"}, `HSRCPAY_TIMEOUT="soon"`},
		{map[string]string{"HSRCPAY_TIMEOUT": "-5s"}, []string{"keys", "get", "key_x"}, "HSRCPAY_TIMEOUT -5s"},
	} {
		env := map[string]string{"HSRCPAY_API_URL": hang.URL + "/v1", "HSRCPAY_API_KEY": "sk_test_x"}
		for k, v := range tc.env {
			env[k] = v
		}
		code, out, errOut := cli(t, env, tc.args...)
		wantCode(t, code, exitUsage, out, errOut)
		contains(t, strings.Join(tc.args, " "), errOut, tc.want)
	}
	if n := sent.Load() - before; n != 0 {
		t.Errorf("a bad time limit still sent %d requests", n)
	}
}
