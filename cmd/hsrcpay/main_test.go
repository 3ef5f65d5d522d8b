package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

const account = "acct_cli"

// cli runs the command in-process with exactly the given environment.
func cli(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, func(k string) string { return env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

// setup starts a server and bootstraps account; env points the CLI at it
// with the account's sandbox managed secret key.
func setup(t *testing.T) (*testenv.Env, testenv.Managed, map[string]string) {
	t.Helper()
	e := testenv.New(t, testenv.Config{})
	m := e.Bootstrap(account)[apikey.Sandbox]
	return e, m, map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": m.Secret}
}

func wantCode(t *testing.T, code, want int, stdout, stderr string) {
	t.Helper()
	if code != want {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, want, stdout, stderr)
	}
}

func contains(t *testing.T, what, s string, subs ...string) {
	t.Helper()
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			t.Errorf("%s lacks %q:\n%s", what, sub, s)
		}
	}
}

func TestCreateHuman(t *testing.T) {
	_, _, env := setup(t)
	code, out, errOut := cli(t, env, "keys", "create", "--account", account, "--name", "Checkout backend",
		"--permission", "account:api:key:create", "--permission", "payment:read",
		"--metadata", "team=checkout", "--metadata", "owner=a=b", "--expires-at", "2030-01-01T00:00:00Z")
	wantCode(t, code, 0, out, errOut)
	if errOut != "" {
		t.Errorf("stderr on success: %q", errOut)
	}
	contains(t, "stdout", out,
		"Created API key key_", "name:", "Checkout backend", "type:", "SECRET", "status:", "ACTIVE",
		"account:", account, "permissions:", "account:api:key:create payment:read",
		"expires at:", "2030-01-01T00:00:00Z", "metadata:", "owner=a=b team=checkout",
		"secret:", "sk_test_", "shown only once")
}

func TestCreateJSONAndTheSecretWorks(t *testing.T) {
	e, m, env := setup(t)
	code, out, errOut := cli(t, env, "keys", "create", "--json", "--account", account, "--name", "rotator",
		"--permission", "account:api:key:update", "--permission", "account:api:key:read",
		"--permission", "payment:read", "--permission", "account:api:key:update") // a repeat is harmless
	wantCode(t, code, 0, out, errOut)
	var key client.APIKey
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&key); err != nil {
		t.Fatalf("--json output is not an API key: %v\n%s", err, out)
	}
	want := client.Permissions{"account:api:key": {"update", "read"}, "payment": {"read"}}
	if key.Name != "rotator" || key.AccountID != account || key.Managed || !reflect.DeepEqual(key.Permissions, want) {
		t.Fatalf("created %+v", key)
	}
	if !strings.HasPrefix(key.Key, "sk_test_") || key.ExpiresAt != nil || len(key.Metadata) != 0 {
		t.Fatalf("created %+v", key)
	}

	// The new secret works, but holds less than the managed key: it may not
	// rotate it (power never grows), and the CLI says why.
	env2 := map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": key.Key}
	code, out, errOut = cli(t, env2, "keys", "regenerate", m.SecretID, "--json")
	wantCode(t, code, exitAuth, out, errOut)
	contains(t, "stderr", errOut, "code: 40302", "missing:")
	// The managed secret rotates itself; its old secret then stops working (no grace period).
	code, out, errOut = cli(t, env, "keys", "regenerate", m.SecretID, "--json")
	wantCode(t, code, 0, out, errOut)
	var regen client.APIKey
	if err := json.Unmarshal([]byte(out), &regen); err != nil {
		t.Fatal(err)
	}
	if regen.ID != m.SecretID || regen.Key == m.Secret || !strings.HasPrefix(regen.Key, "sk_test_") || regen.PreviousKeyExpiresAt != nil {
		t.Fatalf("regenerated %+v", regen)
	}
	code, out, errOut = cli(t, env, "keys", "regenerate", m.SecretID) // env has the old managed secret
	wantCode(t, code, exitAuth, out, errOut)
	// And the regenerated secret is the one that works now.
	if _, err := e.Client(regen.Key).RegenerateAPIKey(context.Background(), m.SecretID); err != nil {
		t.Fatalf("regenerated secret: %v", err)
	}
}

// failingWriter refuses every write, as a closed pipe or a full disk does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// Output that cannot be written fails the command: a new secret is printed
// only once, so success must mean that it was.
func TestUnwritableOutputFails(t *testing.T) {
	_, _, env := setup(t)
	for _, args := range [][]string{
		{"keys", "create", "--account", account, "--name", "lost", "--permission", "payment:read"},
		{"keys", "create", "--account", account, "--name", "lost as JSON", "--permission", "payment:read", "--json"},
		{"keys", "list", "--account", account},
		{"audit", "verify", "--account", account},
	} {
		var errb bytes.Buffer
		code := run(args, func(k string) string { return env[k] }, failingWriter{}, &errb)
		if code != exitError || !strings.Contains(errb.String(), "hsrcpay: writing output: no space left on device") {
			t.Errorf("%v: exit %d, stderr %q; want %d and the write error", args, code, errb.String(), exitError)
		}
	}
}

func TestRegenerateHumanWithGracePeriod(t *testing.T) {
	e, m, env := setup(t)
	// Flags after the id work as well as before it.
	code, out, errOut := cli(t, env, "keys", "regenerate", m.SecretID, "--grace-period", "1h")
	wantCode(t, code, 0, out, errOut)
	contains(t, "stdout", out, "Regenerated API key "+m.SecretID, "managed:", "yes", "secret:", "sk_test_",
		"The previous secret keeps working until", "shown only once")
	// The previous secret still authenticates during the grace period, but it
	// manages no keys: 403 with code 40304, not 401.
	_, err := e.Client(m.Secret).RegenerateAPIKey(context.Background(), "key_doesnotexist0")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.StatusCode != 403 || ae.Code != client.CodeReplacedSecret {
		t.Fatalf("previous secret during the grace period: %v, want 403 code 40304 (authenticated, manages nothing)", err)
	}
}

func TestCreateWithExpiryAndMetadata(t *testing.T) {
	e, _, env := setup(t)
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	code, out, errOut := cli(t, env, "keys", "create", "--json", "--account", account, "--name", "temp",
		"--permission", "payment:read", "--expires-at", exp.Format(time.RFC3339),
		"--metadata", "team=checkout", "--metadata", "ticket=", "--metadata", "note=a=b")
	wantCode(t, code, 0, out, errOut)
	var key client.APIKey
	if err := json.Unmarshal([]byte(out), &key); err != nil {
		t.Fatal(err)
	}
	if key.ExpiresAt == nil || !key.ExpiresAt.Equal(exp) {
		t.Fatalf("expires_at %v, want %v", key.ExpiresAt, exp)
	}
	if want := (client.Metadata{"team": "checkout", "ticket": "", "note": "a=b"}); !reflect.DeepEqual(key.Metadata, want) {
		t.Fatalf("metadata %v, want %v", key.Metadata, want)
	}
	// The key expires for real: after the date the server refuses it.
	e.Clock.Advance(49 * time.Hour)
	env2 := map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": key.Key}
	code, out, errOut = cli(t, env2, "keys", "regenerate", "key_doesnotexist0")
	wantCode(t, code, exitAuth, out, errOut)
	contains(t, "stderr", errOut, "code: 40102")
}

// TestExitCodes covers each exit code and what is printed with it.
func TestExitCodes(t *testing.T) {
	e, m, env := setup(t)
	if code, out, errOut := cli(t, env, "keys", "create", "--account", account, "--name", "taken", "--permission", "payment:read"); code != 0 {
		t.Fatalf("create: %d %s %s", code, out, errOut)
	}
	withEnv := func(k, v string) map[string]string {
		out := map[string]string{}
		for k2, v2 := range env {
			out[k2] = v2
		}
		out[k] = v
		return out
	}
	// Usage errors never reach the server: pointed at a closed port, a
	// request would end in 1, not 2.
	offline := withEnv("HSRCPAY_API_URL", "http://127.0.0.1:1/v1")
	// A name the schema allows but the server refuses (white space at an end):
	// the client checks only the schema, so this reaches the server.
	long := "trailing "
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		want   int
		stderr []string
	}{
		{"no command", offline, nil, exitUsage, []string{"Usage:", "Exit codes:"}},
		{"unknown command", offline, []string{"key"}, exitUsage, []string{`unknown command "key"`}},
		{"unknown keys command", offline, []string{"keys", "destroy", "key_x"}, exitUsage, []string{`unknown command "destroy"`}},
		{"unknown flag", offline, []string{"keys", "create", "--acount", "a"}, exitUsage, []string{"-acount", "--help"}},
		{"no account", offline, []string{"keys", "create", "--name", "x"}, exitUsage, []string{"--account is required"}},
		{"no name", offline, []string{"keys", "create", "--account", account}, exitUsage, []string{"--name is required"}},
		{"positional to create", offline, []string{"keys", "create", "--account", account, "--name", "x", "extra"}, exitUsage, []string{`unexpected argument "extra"`}},
		{"permission without action", offline, []string{"keys", "create", "--account", account, "--name", "x", "--permission", "payment"}, exitUsage, []string{"RESOURCE:ACTION"}},
		{"permission empty action", offline, []string{"keys", "create", "--account", account, "--name", "x", "--permission", "payment:"}, exitUsage, []string{"RESOURCE:ACTION"}},
		{"bad expiry", offline, []string{"keys", "create", "--account", account, "--name", "x", "--expires-at", "2030-01-01"}, exitUsage, []string{"RFC 3339"}},
		{"bad metadata", offline, []string{"keys", "create", "--account", account, "--name", "x", "--metadata", "team"}, exitUsage, []string{"KEY=VALUE"}},
		{"metadata twice", offline, []string{"keys", "create", "--account", account, "--name", "x", "--metadata", "a=1", "--metadata", "a=2"}, exitUsage, []string{"given twice"}},
		{"regenerate without id", offline, []string{"keys", "regenerate"}, exitUsage, []string{"missing KEY_ID"}},
		{"regenerate two ids", offline, []string{"keys", "regenerate", "key_a", "key_b"}, exitUsage, []string{"one KEY_ID"}},
		{"grace in seconds", offline, []string{"keys", "regenerate", "--grace-period", "90s", "key_a"}, exitUsage, []string{"whole minutes"}},
		{"negative grace", offline, []string{"keys", "regenerate", "--grace-period", "-1m", "key_a"}, exitUsage, []string{"whole minutes"}},
		{"missing token", withEnv("HSRCPAY_API_KEY", ""), []string{"keys", "regenerate", m.SecretID}, exitUsage, []string{"no API key: set HSRCPAY_API_KEY or pass --api-key"}},
		{"bad url", withEnv("HSRCPAY_API_URL", "127.0.0.1:8080/v1"), []string{"keys", "regenerate", m.SecretID}, exitUsage, []string{"http://"}},

		{"401 unknown key", withEnv("HSRCPAY_API_KEY", "sk_test_unknownunknownunknownunknown000000"), []string{"keys", "regenerate", m.SecretID}, exitAuth, []string{"Invalid API key or token", "401", "code: 401", "request id: req_"}},
		{"403 publishable key", withEnv("HSRCPAY_API_KEY", m.Publishable), []string{"keys", "regenerate", m.SecretID}, exitAuth, []string{"403", "code: 4030", "request id: req_"}},
		{"404 no such key", env, []string{"keys", "regenerate", "key_doesnotexist0"}, exitNotFound, []string{"API key not found", "code: 40400", "request id: req_"}},
		{"404 base URL without /v1", withEnv("HSRCPAY_API_URL", e.Root), []string{"keys", "regenerate", m.SecretID}, exitNotFound, []string{"code: 40402", "should end in /v1"}},
		{"409 duplicate name", env, []string{"keys", "create", "--account", account, "--name", "taken", "--permission", "payment:read"}, exitError, []string{"already exists", "409", "code: 40900", "request id: req_"}},
		{"422 unknown permission", env, []string{"keys", "create", "--account", account, "--name", "x", "--permission", "payment:explode"}, exitError, []string{"Unknown permission", "code: 42200", `unknown: ["payment:explode"]`}},
		{"422 expiry in the past", env, []string{"keys", "create", "--account", account, "--name", "x", "--permission", "payment:read", "--expires-at", "2001-01-01T00:00:00Z"}, exitError, []string{"code: 42202"}},
		{"400 field error", env, []string{"keys", "create", "--account", account, "--name", long, "--permission", "payment:read"}, exitError, []string{"code: 40000", "invalid body /name:", "request id: req_"}},
		{"server unreachable", offline, []string{"keys", "disable", m.SecretID}, exitError, []string{"cannot reach the API at http://127.0.0.1:1/v1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, tc.env, tc.args...)
			wantCode(t, code, tc.want, out, errOut)
			if tc.want != 0 && out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
			contains(t, "stderr", errOut, tc.stderr...)
		})
	}

	t.Run("403 more than the creator holds", func(t *testing.T) {
		// A key that may create keys but holds only payment:read cannot grant refund:create.
		code, out, errOut := cli(t, env, "keys", "create", "--json", "--account", account, "--name", "creator",
			"--permission", "account:api:key:create", "--permission", "payment:read")
		wantCode(t, code, 0, out, errOut)
		var creator client.APIKey
		if err := json.Unmarshal([]byte(out), &creator); err != nil {
			t.Fatal(err)
		}
		code, out, errOut = cli(t, withEnv("HSRCPAY_API_KEY", creator.Key), "keys", "create",
			"--account", account, "--name", "wider", "--permission", "refund:create")
		wantCode(t, code, exitAuth, out, errOut)
		contains(t, "stderr", errOut, "code: 40302", `missing: ["refund:create"]`, "request id: req_")
	})
}

func TestAPIKeyFlagOverridesEnvironment(t *testing.T) {
	e, m, _ := setup(t)
	env := map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_wrong"}
	code, out, errOut := cli(t, env, "keys", "regenerate", "--api-key", m.Secret, "--api-url", e.URL, m.SecretID)
	wantCode(t, code, 0, out, errOut)
}

func TestHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"help"}, []string{"hsrcpay keys create", "hsrcpay keys regenerate", "hsrcpay keys list", "hsrcpay keys get",
			"hsrcpay keys update", "hsrcpay keys disable", "hsrcpay keys enable", "hsrcpay keys delete", "hsrcpay audit list",
			"hsrcpay audit verify", "HSRCPAY_API_KEY", "HSRCPAY_API_URL", "Exit codes:", "3  authentication", "audit chain is broken"}},
		{[]string{"--help"}, []string{"Exit codes:"}},
		{[]string{"keys", "--help"}, []string{"keys create", "keys regenerate", "keys list", "keys get", "keys update",
			"keys disable", "keys enable", "keys delete", "Exit codes:"}},
		{[]string{"help", "keys"}, []string{"keys list"}},
		{[]string{"keys", "list", "--help"}, []string{"--status STATUS", "--managed true|false", "--created-by", "--deleted", "--limit N", "every page", "JSON array"}},
		{[]string{"help", "keys", "get"}, []string{"KEY_ID", "hint", "account:api:key:read"}},
		{[]string{"keys", "update", "-h"}, []string{"--name NAME", "--metadata KEY=VALUE", "Replaces the whole", "--clear-metadata", "--status active|inactive", "--expires-at", "only move earlier"}},
		{[]string{"keys", "disable", "--help"}, []string{"keys disable", "keys enable", "INACTIVE"}},
		{[]string{"help", "keys", "enable"}, []string{"keys enable"}},
		{[]string{"keys", "delete", "--help"}, []string{"no undo", "keys regenerate", "already"}},
		{[]string{"audit", "--help"}, []string{"audit list", "audit verify", "Exit codes:"}},
		{[]string{"help", "audit"}, []string{"audit list", "audit verify"}},
		{[]string{"audit", "list", "--help"}, []string{"--key-id", "--action ACTION", "bootstrap", "newest first"}},
		{[]string{"help", "audit", "verify"}, []string{"prev_hash", "newest end", "hsrcpay-server audit verify", "Exit codes:"}},
		{[]string{"help", "keys", "create"}, []string{"--permission RESOURCE:ACTION", "last colon", "--expires-at", "--metadata", "Exit codes:"}},
		{[]string{"keys", "create", "--help"}, []string{"--permission RESOURCE:ACTION"}},
		{[]string{"keys", "create", "-h"}, []string{"--permission RESOURCE:ACTION"}},
		{[]string{"keys", "regenerate", "--help"}, []string{"--grace-period", "KEY_ID", "Exit codes:", "4  not found"}},
	} {
		code, out, errOut := cli(t, map[string]string{"HSRCPAY_API_KEY": "sk_test_secret_in_env"}, tc.args...)
		wantCode(t, code, 0, out, errOut)
		if errOut != "" {
			t.Errorf("%v: stderr %q", tc.args, errOut)
		}
		contains(t, strings.Join(tc.args, " "), out, tc.want...)
		if strings.Contains(out, "sk_test_secret_in_env") {
			t.Errorf("%v: help shows the token from the environment", tc.args)
		}
	}
	if code, _, errOut := cli(t, nil, "help", "nothing"); code != exitUsage || errOut == "" {
		t.Errorf("help nothing: %d %q", code, errOut)
	}
}

func TestParsePermissions(t *testing.T) {
	got, err := parsePermissions([]string{"account:api:key:create", "payment:read", "account:api:key:update", "payment:read"})
	if err != nil {
		t.Fatal(err)
	}
	want := client.Permissions{"account:api:key": {"create", "update"}, "payment": {"read"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for _, bad := range []string{"payment", ":read", "payment:", ""} {
		if _, err := parsePermissions([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if got, _ := parsePermissions(nil); got == nil || len(got) != 0 {
		t.Errorf("no permissions: %#v, want an empty map (the API rejects null)", got)
	}
}

// TestIdempotencyKeyFlag: repeating a create or regenerate with the same
// --idempotency-key prints the first call's key and secret; a bad key is a
// usage error, sent nowhere.
func TestIdempotencyKeyFlag(t *testing.T) {
	_, m, env := setup(t)
	create := func() client.APIKey {
		t.Helper()
		code, out, errOut := cli(t, env, "keys", "create", "--json", "--account", account, "--name", "retried",
			"--permission", "payment:read", "--idempotency-key", "cli-create-1")
		wantCode(t, code, 0, out, errOut)
		var k client.APIKey
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	if a, b := create(), create(); a.ID != b.ID || a.Key != b.Key {
		t.Fatalf("the repeated create made another key: %s, %s", a.ID, b.ID)
	}
	regen := func() string {
		t.Helper()
		code, out, errOut := cli(t, env, "keys", "regenerate", "--json", "--idempotency-key", "cli-rot-1", m.PublishableID)
		wantCode(t, code, 0, out, errOut)
		var k client.APIKey
		if err := json.Unmarshal([]byte(out), &k); err != nil {
			t.Fatal(err)
		}
		return k.Key
	}
	if a, b := regen(), regen(); a != b {
		t.Fatal("the repeated regenerate rotated again")
	}
	code, out, errOut := cli(t, env, "keys", "regenerate", "--idempotency-key", "tab\there", m.PublishableID)
	wantCode(t, code, exitUsage, out, errOut)
	contains(t, "stderr", errOut, "--idempotency-key")
}
