package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

func TestKeysVerify(t *testing.T) {
	e, m, env := setup(t)
	c := e.Client(m.Secret)
	k := newKey(t, c, "verified", client.Permissions{"payment": {"read"}})

	// VALID: exit 0, the key's details, never its secret.
	out := ok(t, env, "keys", "verify", "--permission", "payment:read", k.Key)
	contains(t, "valid", out, "VALID: the key works", "id:", k.ID, "account:", account, "mode:", "test", "type:", "SECRET",
		"permissions:", "payment:read", "expires at:", "never")
	if strings.Contains(out, k.Key) {
		t.Fatal("verify prints the key")
	}
	var j verifyJSON
	decodeStrict(t, ok(t, env, "keys", "verify", "--json", k.Key), &j)
	if !j.Valid || j.Code != "VALID" || j.ID != k.ID || j.AccountID != account || j.Managed == nil || *j.Managed {
		t.Fatalf("--json %+v", j)
	}

	// Any other verdict: exit 1, printed on stdout.
	code, out, errOut := cli(t, env, "keys", "verify", "--permission", "payment:read", "--permission", "refund:create", k.Key)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "insufficient", out, "INSUFFICIENT_PERMISSIONS", "missing:", "refund:create")
	code, out, errOut = cli(t, env, "keys", "verify", "--json", "sk_test_nope")
	wantCode(t, code, exitError, out, errOut)
	var nf verifyJSON
	decodeStrict(t, out, &nf)
	if nf.Valid || nf.Code != "NOT_FOUND" || nf.ID != "" || nf.Managed != nil || errOut != "" {
		t.Fatalf("not found --json %+v, stderr %q", nf, errOut)
	}
	if _, err := c.UpdateAPIKey(context.Background(), k.ID, client.Disable()); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = cli(t, env, "keys", "verify", k.Key)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "disabled", out, "DISABLED: the key is disabled", k.ID)

	// The key from stdin ("-"), so that it is not in the process's arguments.
	rot, err := c.RegenerateAPIKey(context.Background(), m.PublishableID, client.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	stdin = strings.NewReader(m.Publishable + "\n")
	t.Cleanup(func() { stdin = os.Stdin })
	out = ok(t, env, "keys", "verify", "-")
	contains(t, "stdin, in grace", out, "VALID", rot.ID, "PUBLISHABLE", "replaced secret until:", "replaced secret")

	// Errors of the request keep their codes; usage errors send nothing.
	noVerify := newKey(t, c, "no verify", client.Permissions{"account:api:key": {"read"}})
	code, out, errOut = cli(t, map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": noVerify.Key}, "keys", "verify", k.Key)
	wantCode(t, code, exitAuth, out, errOut)
	contains(t, "403", errOut, "code: 40300", "account:api:key:verify")
	for args, want := range map[string]string{
		"keys verify":                             "missing KEY",
		"keys verify a b":                         "one KEY expected",
		"keys verify --permission payment k":      "want RESOURCE:ACTION",
		"keys verify " + strings.Repeat("x", 600): "key: a key is at most 512 characters",
	} {
		code, out, errOut := cli(t, env, strings.Fields(args)...)
		wantCode(t, code, exitUsage, out, errOut)
		contains(t, args, errOut, want)
		if strings.Contains(errOut, strings.Repeat("x", 20)) {
			t.Errorf("%s: the key is in the error: %s", args, errOut)
		}
	}
	stdin = strings.NewReader("")
	code, out, errOut = cli(t, env, "keys", "verify", "-")
	wantCode(t, code, exitUsage, out, errOut)
	contains(t, "empty stdin", errOut, "empty KEY")
}
