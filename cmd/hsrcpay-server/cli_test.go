package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/spf13/cobra"
)

// runCLI runs the command in-process and returns its exit code and output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func wantAll(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

// serveFlagHelp is what the help shows for a sample of serve's flags: each
// with its type (booleans have none) and its default.
var serveFlagHelp = []string{
	`--addr string`, `(default "127.0.0.1:8080")`, `$HSRCPAY_ADDR`,
	`--metrics-addr string`, `(default "127.0.0.1:9090")`,
	`--database-url string`, `(default "sqlite:./data")`,
	`--rate-limit-live int`, `(default 100)`, `$HSRCPAY_RATE_LIMIT_LIVE`,
	`--max-active-keys int`, `(default 500)`,
	`--jwt-max-lifetime duration`, `(default 24h0m0s)`,
	`--usage-flush-interval duration`, `(default 5s)`,
	`--shutdown-timeout duration`, `(default 15s)`,
	`--validate-responses string[="true"]`, `(default "0.01")`,
	`--trusted-proxies string`, `$HSRCPAY_TRUSTED_PROXIES`,
	`--log-level string`, `(default "info")`,
	`--demo-account string`,
	`Exit codes:`, `2  usage or configuration`,
}

// TestHelp: help, --help and -h exit 0 and print, on stdout, the commands
// and serve's flags with their types and defaults.
func TestHelp(t *testing.T) {
	commands := []string{"hsrcpay-server serve", "hsrcpay-server bootstrap", "hsrcpay-server rotate-managed", "hsrcpay-server audit",
		"hsrcpay-server migrate", "hsrcpay-server version", "hsrcpay-server completion", "hsrcpay-server help"}
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}, {"help", "serve"}, {"serve", "--help"}, {"serve", "-h"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		wantAll(t, strings.Join(args, " "), out, serveFlagHelp...)
		if len(args) == 1 {
			wantAll(t, strings.Join(args, " "), out, commands...)
		}
		if strings.Contains(out, "--rate-limit-live string") {
			t.Errorf("%v: a number flag shows as a string", args)
		}
	}
	for args, want := range map[string][]string{
		"bootstrap --help":  {"--account string", "--mode string", `(default "both")`, "as JSON"},
		"help bootstrap":    {"hsrcpay-server bootstrap --account ID"},
		"audit --help":      {"hsrcpay-server audit verify"},
		"help audit":        {"hsrcpay-server audit verify"},
		"audit verify -h":   {"first broken link", "Exit codes:"},
		"audit help":        {"hsrcpay-server audit verify"},
		"completion --help": {"bash", "zsh", "fish", "powershell"},
	} {
		code, out, errOut := runCLI(strings.Fields(args)...)
		if code != 0 || errOut != "" {
			t.Fatalf("%s: exit %d, stderr %q", args, code, errOut)
		}
		wantAll(t, args, out, want...)
	}
	// The environment's values are not the help's defaults (a password in
	// HSRCPAY_DATABASE_URL would show).
	t.Setenv("HSRCPAY_DATABASE_URL", "postgres://u:hunter2@db/x")
	if _, out, _ := runCLI("--help"); strings.Contains(out, "hunter2") {
		t.Fatal("--help shows a value from the environment")
	}
}

// TestUsageErrors: a bad command line exits 2 with the reason on stderr and
// nothing on stdout.
func TestUsageErrors(t *testing.T) {
	for args, want := range map[string]string{
		"frobnicate":                       `unknown command "frobnicate"`,
		"--no-such-flag":                   "unknown flag: --no-such-flag",
		"serve --no-such-flag":             "unknown flag: --no-such-flag",
		"serve extra":                      `unknown command "extra"`,
		"bootstrap --account a b":          `unknown command "b"`,
		"bootstrap --mode":                 "flag needs an argument: --mode",
		"bootstrap --account a --mode all": "--mode must be live, test or both",
		"audit":                            "hsrcpay-server audit verify",
		"audit show":                       `unknown command "show"`,
		"audit verify extra":               `unknown command "extra"`,
		"help nothing":                     `no help for "nothing"`,
		"help audit nothing":               `no help for "audit nothing"`,
		"version extra":                    `unknown command "extra"`,
	} {
		code, out, errOut := runCLI(strings.Fields(args)...)
		if code != 2 || out != "" || !strings.Contains(errOut, want) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want 2 and %q", args, code, out, errOut, want)
		}
	}
}

// TestVersion: version, --version and -v print the module and the VCS
// revision from the build information.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, out, errOut := runCLI(args...)
		if code != 0 || errOut != "" {
			t.Fatalf("%v: exit %d, stderr %q", args, code, errOut)
		}
		wantAll(t, strings.Join(args, " "), out, "hsrcpay-server ", "module:", "revision:", "go:")
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/hsrcpay/apikeys", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "2d3ab92c27f0"}, {Key: "vcs.time", Value: "2026-01-02T03:04:05Z"}, {Key: "vcs.modified", Value: "true"}}}
	wantAll(t, "stamped build", buildinfo.Format("hsrcpay-server", bi, true),
		"hsrcpay-server v1.4.0\n", "module:   github.com/hsrcpay/apikeys\n", "revision: 2d3ab92c27f0 (with uncommitted changes)\n",
		"time:     2026-01-02T03:04:05Z\n", "go:       go1.26.0")
	wantAll(t, "unstamped build", buildinfo.Format("hsrcpay-server", &debug.BuildInfo{Main: debug.Module{Path: "m"}}, true),
		"hsrcpay-server (devel)\n", "revision: unknown")
	wantAll(t, "no build info", buildinfo.Format("hsrcpay-server", nil, false), "no build information")
}

// TestCompletion: cobra's completion scripts, and completion of commands and
// of flag values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := runCLI("completion", shell)
		if code != 0 || !strings.Contains(out, "hsrcpay-server") || errOut != "" {
			t.Errorf("completion %s: exit %d, %d bytes, stderr %q", shell, code, len(out), errOut)
		}
	}
	for args, want := range map[string][]string{
		"__complete ":                      {"serve", "bootstrap", "audit", "version"},
		"__complete bootstrap --mode ":     {"live", "test", "both"},
		"__complete serve --log-level ":    {"debug", "info", "warn", "error"},
		"__complete --sqlite-synchronous ": {"NORMAL", "FULL"},
		"__complete audit ":                {"verify"},
	} {
		a := strings.Split(args, " ") // the trailing "" is the word being completed
		code, out, _ := runCLI(a...)
		if code != 0 {
			t.Errorf("%q: exit %d", args, code)
		}
		wantAll(t, args, out, want...)
	}
}

// TestServeFlags: every HSRCPAY_* variable is a serve flag of its kind, and a
// flag given wins over the environment, which fills in the rest.
func TestServeFlags(t *testing.T) {
	kinds := map[string]string{
		"HSRCPAY_ADDR": "string", "HSRCPAY_METRICS_ADDR": "string", "HSRCPAY_DATABASE_URL": "string",
		"HSRCPAY_MIGRATE": "string", "HSRCPAY_MIGRATION_DATABASE_URL": "string", "HSRCPAY_SHUTDOWN_DRAIN": "duration",
		"HSRCPAY_SQLITE_SYNCHRONOUS": "string", "HSRCPAY_REDIS_URL": "string", "HSRCPAY_JWT_JWKS_URL": "string",
		"HSRCPAY_JWT_PUBLIC_KEY_FILE": "string", "HSRCPAY_JWT_ISSUER": "string", "HSRCPAY_JWT_AUDIENCE": "string",
		"HSRCPAY_JWT_MAX_LIFETIME": "duration", "HSRCPAY_RATE_LIMIT_LIVE": "int", "HSRCPAY_RATE_LIMIT_TEST": "int",
		"HSRCPAY_MAX_ACTIVE_KEYS": "int", "HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE": "int", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST": "int",
		"HSRCPAY_AUTH_FAILURE_LIMIT": "int", "HSRCPAY_VALIDATE_RESPONSES": "string", "HSRCPAY_USAGE_FLUSH_INTERVAL": "duration",
		"HSRCPAY_TRUSTED_PROXIES": "string", "HSRCPAY_LOG_LEVEL": "string", "HSRCPAY_SHUTDOWN_TIMEOUT": "duration",
		"HSRCPAY_DEMO_ACCOUNT": "string", "HSRCPAY_CREDENTIAL_CACHE_TTL": "duration", "HSRCPAY_STORE_TIMEOUT": "duration",
		"HSRCPAY_CREDENTIAL_CACHE_KEYS": "int", "HSRCPAY_CREDENTIAL_CACHE_MEMORY": "string",
		"HSRCPAY_IDEMPOTENCY_KEY_FILE": "string", "HSRCPAY_DEPLOYMENT": "string",
		"HSRCPAY_SECRET_SCANNING_KEYS_FILE": "string", "HSRCPAY_SECRET_SCANNING_KEYS_URL": "string", "HSRCPAY_SECRET_SCANNING_RATE_LIMIT": "int",
		"HSRCPAY_TLS_CERT_FILE": "string", "HSRCPAY_TLS_KEY_FILE": "string", "HSRCPAY_TLS_RELOAD_INTERVAL": "duration",
	}
	for _, c := range []*cobra.Command{newRootCmd(nil, nil), mustFind(t, "serve")} {
		if len(config.Variables) != len(kinds) {
			t.Errorf("%d variables, %d kinds in this test", len(config.Variables), len(kinds))
		}
		for _, v := range config.Variables {
			f := c.Flags().Lookup(flagName(v.Name))
			if f == nil {
				t.Errorf("%s: %s has no flag", c.Name(), v.Name)
				continue
			}
			if f.Value.Type() != kinds[v.Name] {
				t.Errorf("--%s is a %s flag, want %s", f.Name, f.Value.Type(), kinds[v.Name])
			}
			// The flag's default is the documented one, and means the same.
			def, err := config.Load(func(name string) (string, bool) { return f.DefValue, name == v.Name })
			if err != nil || def != config.Defaults() {
				t.Errorf("--%s's default %q is not %s's (%v)", f.Name, f.DefValue, v.Name, err)
			}
		}
	}

	serve := mustFind(t, "serve")
	if err := serve.ParseFlags([]string{"--rate-limit-live", "7", "--trusted-proxies", "10.0.0.0/8, 192.0.2.1", "--usage-flush-interval", "250ms",
		"--validate-responses=false", "--addr", "127.0.0.1:0", "--jwt-max-lifetime=2h"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"HSRCPAY_RATE_LIMIT_LIVE": "lots", "HSRCPAY_TRUSTED_PROXIES": "nope", "HSRCPAY_ADDR": "bad",
		"HSRCPAY_RATE_LIMIT_TEST": "9", "HSRCPAY_LOG_LEVEL": "debug"}
	cfg, err := config.Load(serveLookup(serve.Flags(), func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatalf("the flags did not win over the bad environment values: %v", err)
	}
	if cfg.RateLimitLive != 7 || cfg.TrustedProxies != "10.0.0.0/8, 192.0.2.1" || cfg.UsageFlushInterval != 250*time.Millisecond || cfg.ResponseValidation != 0 ||
		cfg.Addr != "127.0.0.1:0" || cfg.JWTMaxLifetime != 2*time.Hour {
		t.Errorf("flags not applied: %+v", cfg)
	}
	if cfg.RateLimitSandbox != 9 || cfg.LogLevel.String() != "DEBUG" || cfg.MaxActiveKeys != 500 {
		t.Errorf("the environment and the defaults not applied beside the flags: %+v", cfg)
	}
}

// TestValidateResponsesFlag: --validate-responses alone still means every
// response (it was a boolean flag); =false none; a number, that share.
func TestValidateResponsesFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want float64
	}{
		{[]string{"--validate-responses"}, 1},
		{[]string{"--validate-responses", "--trusted-proxies", "10.0.0.1"}, 1},
		{[]string{"--validate-responses=false"}, 0},
		{[]string{"--validate-responses=0.25"}, 0.25},
		{nil, config.DefaultResponseValidation},
	} {
		serve := mustFind(t, "serve")
		if err := serve.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(serveLookup(serve.Flags(), func(string) (string, bool) { return "", false }))
		if err != nil || cfg.ResponseValidation != tc.want {
			t.Errorf("%q: %v, %v; want %v", tc.args, cfg.ResponseValidation, err, tc.want)
		}
	}
}

func mustFind(t *testing.T, args ...string) *cobra.Command {
	t.Helper()
	c, _, err := newRootCmd(nil, nil).Find(args)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBadSettingsExit2: a bad value of each kind, as a flag or in the
// environment, stops serve with exit 2 naming the variable, before anything
// is opened, bound or printed.
func TestBadSettingsExit2(t *testing.T) {
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
	t.Setenv("HSRCPAY_DEMO_ACCOUNT", "acct_never")
	for _, tc := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		// Types refused by the flag parser.
		{nil, []string{"--rate-limit-live", "lots"}, "HSRCPAY_RATE_LIMIT_LIVE"},
		{nil, []string{"serve", "--max-active-keys=1.5"}, "HSRCPAY_MAX_ACTIVE_KEYS"},
		{nil, []string{"serve", "--trusted-proxies=10.0.0.1/8"}, "HSRCPAY_TRUSTED_PROXIES"},
		{nil, []string{"serve", "--validate-responses=yes"}, "HSRCPAY_VALIDATE_RESPONSES"},
		{nil, []string{"serve", "--usage-flush-interval", "soon"}, "HSRCPAY_USAGE_FLUSH_INTERVAL"},
		{nil, []string{"serve", "--shutdown-timeout", "15"}, "HSRCPAY_SHUTDOWN_TIMEOUT"},
		// Ranges and formats refused by the configuration.
		{nil, []string{"serve", "--addr", "127.0.0.1:99999"}, "HSRCPAY_ADDR"},
		{map[string]string{"HSRCPAY_ADDR": "127.0.0.1:99999"}, nil, "HSRCPAY_ADDR"},
		{map[string]string{"HSRCPAY_ADDR": "127.0.0.1:99999"}, []string{"serve"}, "HSRCPAY_ADDR"},
		{map[string]string{"HSRCPAY_METRICS_ADDR": "127.0.0.1:65536"}, nil, "HSRCPAY_METRICS_ADDR"},
		{nil, []string{"--database-url", "postgres://u@db:99999/x"}, "HSRCPAY_DATABASE_URL"},
		{map[string]string{"HSRCPAY_REDIS_URL": "redis://h:99999/0"}, nil, "HSRCPAY_REDIS_URL"},
		{nil, []string{"serve", "--jwt-jwks-url", "https://auth.example:99999/jwks", "--jwt-issuer", "i", "--jwt-audience", "a"}, "HSRCPAY_JWT_JWKS_URL"},
		{nil, []string{"serve", "--sqlite-synchronous", "SOMETIMES"}, "HSRCPAY_SQLITE_SYNCHRONOUS"},
		{nil, []string{"serve", "--rate-limit-test", "0"}, "HSRCPAY_RATE_LIMIT_TEST"},
		{map[string]string{"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE": "lots"}, nil, "HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE"},
		{nil, []string{"serve", "--jwt-max-lifetime", "1s"}, "HSRCPAY_JWT_MAX_LIFETIME"},
		{map[string]string{"HSRCPAY_USAGE_FLUSH_INTERVAL": "2h"}, nil, "HSRCPAY_USAGE_FLUSH_INTERVAL"},
		{nil, []string{"serve", "--shutdown-timeout", "-1s"}, "HSRCPAY_SHUTDOWN_TIMEOUT"},
		{map[string]string{"HSRCPAY_TRUSTED_PROXIES": "proxy.internal"}, nil, "HSRCPAY_TRUSTED_PROXIES"},
		// Replaced: true names its replacement; a bad value is refused too.
		{map[string]string{"HSRCPAY_TRUST_PROXY": "true"}, nil, "HSRCPAY_TRUSTED_PROXIES=<your proxies' addresses or CIDRs>"},
		{map[string]string{"HSRCPAY_TRUST_PROXY": "maybe"}, nil, "HSRCPAY_TRUST_PROXY"},
		{nil, []string{"serve", "--log-level", "loud"}, "HSRCPAY_LOG_LEVEL"},
		{nil, []string{"serve", "--demo-account", "bad id!"}, "HSRCPAY_DEMO_ACCOUNT"},
		{map[string]string{"HSRCPAY_JWT_JWKS_URL": "https://auth.example/jwks"}, nil, "HSRCPAY_JWT_ISSUER"},
		// bootstrap and audit verify read the environment too.
		{map[string]string{"HSRCPAY_DATABASE_URL": "mysql://db"}, []string{"bootstrap", "--account", "acct_x"}, "HSRCPAY_DATABASE_URL"},
		{map[string]string{"HSRCPAY_MAX_ACTIVE_KEYS": "1"}, []string{"audit", "verify"}, "HSRCPAY_MAX_ACTIVE_KEYS"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		code, out, errOut := runCLI(tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || out != "" {
			t.Errorf("%v %v: exit %d, stdout %q, stderr %q; want 2 naming %s", tc.env, tc.args, code, out, errOut, tc.want)
		}
		if strings.Contains(errOut, `"listening"`) {
			t.Errorf("%v %v: logged listening", tc.env, tc.args)
		}
		for k := range tc.env {
			if err := os.Unsetenv(k); err != nil {
				t.Fatal(err)
			}
		}
		t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
	}
}

// TestTakenPortKeepsTheRunningServersKeys: a second server (as a second
// `make run`: no arguments, the same data and demo account) whose port is
// taken exits 1 naming HSRCPAY_ADDR, prints no keys, never says it listens,
// and the first server's demo key keeps working.
func TestTakenPortKeepsTheRunningServersKeys(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	dir := t.TempDir()
	env := []string{"HSRCPAY_DATABASE_URL=sqlite:" + dir, "HSRCPAY_DEMO_ACCOUNT=acct_twice"}
	_, base, vars := startServer(t, env...)
	if vars["HSRCPAY_API_KEY"] == "" {
		t.Fatal("the first server printed no demo key")
	}
	c, err := client.New(base, vars["HSRCPAY_API_KEY"], client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string) error {
		_, err := c.CreateAPIKey(context.Background(), "acct_twice", client.CreateAPIKeyRequest{Name: name, Permissions: client.Permissions{}})
		return err
	}
	if err := create("before"); err != nil {
		t.Fatalf("demo key before the second start: %v", err)
	}

	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := strings.TrimSuffix(strings.TrimPrefix(base, "http://"), "/v1")
	for i, args := range [][]string{nil, {"serve"}} {
		second := exec.CommandContext(context.Background(), bin, args...) //nolint:gosec // the server binary this test built
		second.Env = append(append(os.Environ(), env...), "HSRCPAY_ADDR="+addr, "HSRCPAY_METRICS_ADDR=127.0.0.1:0", "HSRCPAY_LOG_LEVEL=debug")
		var out, errb bytes.Buffer
		second.Stdout, second.Stderr = &out, &errb
		if err := second.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- second.Wait() }()
		select {
		case err = <-done:
		case <-time.After(20 * time.Second):
			_ = second.Process.Kill() // the test fails anyway; just do not leave it running
			t.Fatalf("%v: the second server did not stop within 20s with its port taken", args)
		}
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 {
			t.Errorf("%v: the second server ended with %v, want exit status 1", args, err)
		}
		if out.Len() != 0 {
			t.Errorf("%v: the second server printed:\n%s", args, out.String())
		}
		if !strings.Contains(errb.String(), "HSRCPAY_ADDR") || strings.Contains(errb.String(), `"listening"`) {
			t.Errorf("%v: stderr does not name HSRCPAY_ADDR, or logs listening:\n%s", args, errb.String())
		}
		if err := create(fmt.Sprintf("after second start %d", i)); err != nil {
			t.Fatalf("%v: the first server's demo key stopped working after a second start on its port: %v", args, err)
		}
	}
}

// TestNoArgumentsServes: a bare hsrcpay-server serves (make run relies on it).
func TestNoArgumentsServes(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.CommandContext(context.Background(), bin) //nolint:gosec // the server binary this test built
	cmd.Env = append(os.Environ(), "HSRCPAY_ADDR="+addr, "HSRCPAY_METRICS_ADDR=", "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only if it has exited already
		_ = cmd.Wait()         // killed: the error says so
	})
	for i := 0; i < 200; i++ {
		if c, err := new(net.Dialer).DialContext(context.Background(), "tcp", addr); err == nil {
			_ = c.Close() // a probe: it connected
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if res, _ := httpGet(t, "http://"+addr+"/healthz"); res.StatusCode != 200 { //nolint:bodyclose // httpGet reads and closes the body
		t.Fatalf("healthz %d", res.StatusCode)
	}
}
