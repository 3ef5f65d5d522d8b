package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// decodeStrict decodes the --json output into v, refusing unknown fields.
func decodeStrict(t *testing.T, out string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("--json output: %v\n%s", err, out)
	}
}

// ok runs the command and wants exit 0 and an empty stderr.
func ok(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errOut := cli(t, env, args...)
	wantCode(t, code, 0, out, errOut)
	if errOut != "" {
		t.Errorf("%v: stderr on success: %q", args, errOut)
	}
	return out
}

func newKey(t *testing.T, c *client.Client, name string, perms client.Permissions) *client.APIKey {
	t.Helper()
	k, err := c.CreateAPIKey(context.Background(), account, client.CreateAPIKeyRequest{Name: name, Permissions: perms})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k
}

func TestKeysList(t *testing.T) {
	e, m, env := setup(t)
	c := e.Client(m.Secret)
	var created []*client.APIKey
	for i := range 5 {
		created = append(created, newKey(t, c, fmt.Sprintf("worker %d", i), client.Permissions{"payment": {"read"}}))
	}

	// Human: a table of every page (2 keys a page here).
	out := ok(t, env, "keys", "list", "--account", account, "--limit", "2")
	contains(t, "table", out, "ID", "NAME", "TYPE", "STATUS", "HINT", "EXPIRES", "CREATED",
		"Managed secret key", "Managed publishable key", "PUBLISHABLE", "pk_test_…", "never")
	for _, k := range created {
		line := ""
		for _, l := range strings.Split(out, "\n") {
			if strings.HasPrefix(l, k.ID) {
				line = l
			}
		}
		hint := "sk_test_…" + k.Key[len(k.Key)-4:]
		if !strings.Contains(line, k.Name) || !strings.Contains(line, "SECRET") || !strings.Contains(line, "ACTIVE") || !strings.Contains(line, hint) {
			t.Errorf("row of %s: %q (want name, type, status and hint %s)", k.ID, line, hint)
		}
		if strings.Contains(out, k.Key) {
			t.Fatal("the list shows a secret")
		}
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 7 {
		t.Errorf("%d rows under the header, want 7:\n%s", n, out)
	}

	// --json: one array holding every page, oldest first.
	var keys []client.APIKeyView
	decodeStrict(t, ok(t, env, "keys", "list", "--json", "--account", account, "--limit", "2"), &keys)
	if len(keys) != 7 || !keys[0].Managed || keys[2].ID != created[0].ID || keys[6].ID != created[4].ID {
		t.Fatalf("--json listed %d keys: %+v", len(keys), keys)
	}

	// Filters.
	if _, err := c.UpdateAPIKey(context.Background(), created[1].ID, client.Disable()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAPIKey(context.Background(), created[2].ID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want int
	}{
		{[]string{"--status", "inactive", "--managed", "false"}, 1},
		{[]string{"--status", "ACTIVE"}, 5},
		{[]string{"--managed", "true"}, 2},
		{[]string{"--managed=false"}, 4},
		{[]string{"--type", "publishable"}, 1},
		{[]string{"--created-by", "bootstrap"}, 2},
		{[]string{"--created-by", m.SecretID}, 4},
		{[]string{"--deleted"}, 1},
		{[]string{"--deleted", "--managed", "true"}, 0},
	} {
		var got []client.APIKeyView
		decodeStrict(t, ok(t, env, append([]string{"keys", "list", "--account", account, "--json"}, tc.args...)...), &got)
		if len(got) != tc.want {
			t.Errorf("%v: %d keys, want %d", tc.args, len(got), tc.want)
		}
	}
	// Deleted keys show as such; no match is said, and is [] in JSON.
	contains(t, "deleted", ok(t, env, "keys", "list", "--account", account, "--deleted"), created[2].ID, "DELETED")
	contains(t, "none", ok(t, env, "keys", "list", "--account", account, "--deleted", "--managed", "true"), "No API keys match.")
	if out := ok(t, env, "keys", "list", "--json", "--account", account, "--deleted", "--managed", "true"); out != "[]\n" {
		t.Errorf("empty --json list: %q", out)
	}
}

func TestKeysGetUpdateDisableEnableDelete(t *testing.T) {
	e, m, env := setup(t)
	c := e.Client(m.Secret)
	k := newKey(t, c, "lifecycle", client.Permissions{"payment": {"read"}})
	hint := "sk_test_…" + k.Key[len(k.Key)-4:]

	// get
	out := ok(t, env, "keys", "get", k.ID)
	contains(t, "get", out, "API key "+k.ID, "name:", "lifecycle", "status:", "ACTIVE", "hint:", hint,
		"permissions:", "payment:read", "created by:", "key "+m.SecretID, "expires at:", "never", "last used:")
	if strings.Contains(out, k.Key) {
		t.Fatal("get shows the secret")
	}
	var v client.APIKeyView
	decodeStrict(t, ok(t, env, "keys", "get", "--json", k.ID), &v)
	if v.ID != k.ID || v.KeyHint == nil || *v.KeyHint != hint || v.CreatedBy.ID != m.SecretID {
		t.Fatalf("get --json %+v", v)
	}

	// update, human and JSON
	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	out = ok(t, env, "keys", "update", k.ID, "--name", "lifecycle 2", "--metadata", "team=x", "--metadata", "note=a=b",
		"--expires-at", exp.Format(time.RFC3339))
	contains(t, "update", out, "Updated API key "+k.ID, "lifecycle 2", "note=a=b team=x", exp.Format(time.RFC3339))
	decodeStrict(t, ok(t, env, "keys", "update", "--json", "--clear-metadata", k.ID), &v)
	if len(v.Metadata) != 0 || v.Name != "lifecycle 2" || v.ExpiresAt == nil || !v.ExpiresAt.Equal(exp) {
		t.Fatalf("update --json %+v", v)
	}
	decodeStrict(t, ok(t, env, "keys", "update", "--json", "--status", "inactive", k.ID), &v)
	if v.Status != client.StatusInactive {
		t.Fatalf("update --status inactive: %+v", v)
	}
	decodeStrict(t, ok(t, env, "keys", "update", k.ID, "--status", "ACTIVE", "--json"), &v)
	if v.Status != client.StatusActive {
		t.Fatalf("update --status ACTIVE: %+v", v)
	}

	// disable / enable, and what they do to the secret
	contains(t, "disable", ok(t, env, "keys", "disable", k.ID), "Disabled API key "+k.ID, "INACTIVE", "disabled")
	keyEnv := map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": k.Key}
	code, out, errOut := cli(t, keyEnv, "keys", "get", k.ID)
	wantCode(t, code, exitAuth, out, errOut)
	contains(t, "a disabled key's secret", errOut, "code: 40101")
	decodeStrict(t, ok(t, env, "keys", "enable", "--json", k.ID), &v)
	if v.Status != client.StatusActive {
		t.Fatalf("enable --json %+v", v)
	}
	decodeStrict(t, ok(t, env, "keys", "disable", "--json", k.ID), &v)
	if v.Status != client.StatusInactive {
		t.Fatalf("disable --json %+v", v)
	}
	contains(t, "enable", ok(t, env, "keys", "enable", k.ID), "Enabled API key "+k.ID, "ACTIVE")

	// delete, twice: both succeed
	contains(t, "delete", ok(t, env, "keys", "delete", k.ID), "Deleted API key "+k.ID, "DELETED", "no longer authenticates")
	decodeStrict(t, ok(t, env, "keys", "delete", "--json", k.ID), &v)
	if !v.Deleted || v.ID != k.ID {
		t.Fatalf("second delete --json %+v", v)
	}
	code, out, errOut = cli(t, keyEnv, "keys", "get", k.ID)
	wantCode(t, code, exitAuth, out, errOut)
	contains(t, "get deleted", ok(t, env, "keys", "get", k.ID), "DELETED")
}

func TestAuditListAndVerify(t *testing.T) {
	e, m, env := setup(t)
	c := e.Client(m.Secret)
	k := newKey(t, c, "audited", client.Permissions{"payment": {"read"}})
	ok(t, env, "keys", "disable", k.ID)
	ok(t, env, "keys", "update", k.ID, "--name", "audited 2")

	// bootstrap ×2, create, disable, update: newest first.
	out := ok(t, env, "audit", "list", "--account", account, "--limit", "2")
	contains(t, "audit list", out, "SEQ", "TIME", "ACTION", "KEY", "ACTOR", "CHANGES",
		"bootstrap", "platform bootstrap", "create", "disable", "status=INACTIVE", "update", "name=audited 2", "key "+m.SecretID)
	if i, j := strings.Index(out, "name=audited 2"), strings.Index(out, "status=INACTIVE"); i < 0 || j < 0 || i > j {
		t.Errorf("not newest first:\n%s", out)
	}
	if strings.Contains(out, k.Key) || strings.Contains(out, m.Secret) {
		t.Fatal("an event shows a secret")
	}
	var events []client.AuditEvent
	decodeStrict(t, ok(t, env, "audit", "list", "--json", "--account", account, "--limit", "2"), &events)
	if len(events) != 5 || events[0].Seq != 5 || events[4].Seq != 1 || events[0].Action != client.AuditUpdate {
		t.Fatalf("audit list --json: %+v", events)
	}
	var filtered []client.AuditEvent
	decodeStrict(t, ok(t, env, "audit", "list", "--json", "--account", account, "--key-id", k.ID, "--action", "DISABLE"), &filtered)
	if len(filtered) != 1 || filtered[0].Action != client.AuditDisable || filtered[0].KeyID != k.ID {
		t.Fatalf("filtered: %+v", filtered)
	}
	contains(t, "no events", ok(t, env, "audit", "list", "--account", account, "--key-id", "key_doesnotexist0"), "No audit events match.")

	// verify: the chain holds; the head is printed to keep.
	out = ok(t, env, "audit", "verify", "--account", account)
	contains(t, "verify", out, "holds: 5 events, seq 1 to 5", "Head: seq 5, hash "+events[0].Hash, "hsrcpay-server audit verify")
	var res verifyResult
	decodeStrict(t, ok(t, env, "audit", "verify", "--json", "--account", account), &res)
	if !res.Intact || res.Events != 5 || res.HeadSeq != 5 || res.HeadHash != events[0].Hash || res.Mode != "test" || res.AccountID != account {
		t.Fatalf("verify --json %+v", res)
	}

	// An event edited in the database breaks the chain at its seq: exit 1.
	tamperAuditEvent(t, e, account, 3)
	code, out, errOut := cli(t, env, "audit", "verify", "--account", account)
	wantCode(t, code, exitError, out, errOut)
	if out != "" {
		t.Errorf("stdout on a broken chain: %q", out)
	}
	contains(t, "stderr", errOut, "audit chain of account "+account+" (test) is broken at seq 3", "hash mismatch")
	code, out, errOut = cli(t, env, "audit", "verify", "--json", "--account", account)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "stderr", errOut, "broken at seq 3")
}

// TestLifecycleExitCodes covers the new commands' usage errors (nothing is
// sent: the URL points at a closed port) and their API refusals.
func TestLifecycleExitCodes(t *testing.T) {
	e, m, env := setup(t)
	c := e.Client(m.Secret)
	k := newKey(t, c, "plain", client.Permissions{"payment": {"read"}})
	newKey(t, c, "taken", client.Permissions{"payment": {"read"}})
	strong := newKey(t, c, "strong", client.Permissions{"refund": {"create"}})
	admin := newKey(t, c, "admin", client.Permissions{"account:api:key": {"read", "update", "delete"}})
	other := e.Bootstrap("acct_cli_other")
	offline := map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": m.Secret}
	as := func(token string) map[string]string {
		return map[string]string{"HSRCPAY_API_URL": e.URL, "HSRCPAY_API_KEY": token}
	}
	for _, tc := range []struct {
		name   string
		env    map[string]string
		args   []string
		want   int
		stderr []string
	}{
		{"list without account", offline, []string{"keys", "list"}, exitUsage, []string{"--account is required"}},
		{"list bad status", offline, []string{"keys", "list", "--account", account, "--status", "deleted"}, exitUsage, []string{"active, inactive, expired"}},
		{"list bad type", offline, []string{"keys", "list", "--account", account, "--type", "public"}, exitUsage, []string{"secret, publishable"}},
		{"list bad managed", offline, []string{"keys", "list", "--account", account, "--managed", "maybe"}, exitUsage, []string{"true or false"}},
		{"list managed without value", offline, []string{"keys", "list", "--account", account, "--managed"}, exitUsage, []string{"-managed"}},
		{"list limit 0", offline, []string{"keys", "list", "--account", account, "--limit", "0"}, exitUsage, []string{"1 to 100"}},
		{"list limit 101", offline, []string{"keys", "list", "--account", account, "--limit", "101"}, exitUsage, []string{"1 to 100"}},
		{"list positional", offline, []string{"keys", "list", "--account", account, "extra"}, exitUsage, []string{`unexpected argument "extra"`}},
		{"get without id", offline, []string{"keys", "get"}, exitUsage, []string{"missing KEY_ID"}},
		{"get two ids", offline, []string{"keys", "get", "key_a", "key_b"}, exitUsage, []string{"one KEY_ID"}},
		{"update nothing", offline, []string{"keys", "update", "key_a"}, exitUsage, []string{"nothing to change"}},
		{"update metadata and clear", offline, []string{"keys", "update", "--metadata", "a=1", "--clear-metadata", "key_a"}, exitUsage, []string{"exclude each other"}},
		{"update bad metadata", offline, []string{"keys", "update", "--metadata", "a", "key_a"}, exitUsage, []string{"KEY=VALUE"}},
		{"update bad status", offline, []string{"keys", "update", "--status", "expired", "key_a"}, exitUsage, []string{"active, inactive"}},
		{"update bad expiry", offline, []string{"keys", "update", "--expires-at", "tomorrow", "key_a"}, exitUsage, []string{"RFC 3339"}},
		{"update empty name", offline, []string{"keys", "update", "--name", "", "key_a"}, exitUsage, []string{"--name must not be empty"}},
		{"update without id", offline, []string{"keys", "update", "--name", "x"}, exitUsage, []string{"missing KEY_ID"}},
		{"disable without id", offline, []string{"keys", "disable"}, exitUsage, []string{"missing KEY_ID"}},
		{"enable two ids", offline, []string{"keys", "enable", "a", "b"}, exitUsage, []string{"one KEY_ID"}},
		{"delete without id", offline, []string{"keys", "delete"}, exitUsage, []string{"missing KEY_ID"}},
		{"delete empty id", offline, []string{"keys", "delete", ""}, exitUsage, []string{"empty KEY_ID"}},
		{"audit alone", offline, []string{"audit"}, exitUsage, []string{"audit list", "audit verify"}},
		{"audit unknown", offline, []string{"audit", "show"}, exitUsage, []string{`unknown command "show"`}},
		{"audit list without account", offline, []string{"audit", "list"}, exitUsage, []string{"--account is required"}},
		{"audit list bad action", offline, []string{"audit", "list", "--account", account, "--action", "rotate"}, exitUsage, []string{"create, regenerate"}},
		{"audit list limit", offline, []string{"audit", "list", "--account", account, "--limit", "-1"}, exitUsage, []string{"1 to 100"}},
		{"audit verify without account", offline, []string{"audit", "verify"}, exitUsage, []string{"--account is required"}},
		{"audit verify positional", offline, []string{"audit", "verify", "--account", account, "x"}, exitUsage, []string{`unexpected argument "x"`}},
		{"no token", map[string]string{"HSRCPAY_API_URL": e.URL}, []string{"keys", "list", "--account", account}, exitUsage, []string{"no API key"}},
		{"unreachable", offline, []string{"keys", "get", k.ID}, exitError, []string{"cannot reach the API"}},

		{"401 unknown token", as("sk_test_unknownunknownunknownunknown000000"), []string{"keys", "list", "--account", account}, exitAuth, []string{"code: 401", "request id: req_"}},
		{"403 list another account", env, []string{"keys", "list", "--account", "acct_cli_other"}, exitAuth, []string{"code: 40301"}},
		{"403 no read", as(k.Key), []string{"keys", "get", k.ID}, exitAuth, []string{"code: 40300"}},
		{"403 audit without account:audit:read", as(admin.Key), []string{"audit", "list", "--account", account}, exitAuth, []string{"code: 40300"}},
		{"403 audit verify without account:audit:read", as(admin.Key), []string{"audit", "verify", "--account", account}, exitAuth, []string{"code: 40300"}},
		{"403 update a stronger key", as(admin.Key), []string{"keys", "disable", strong.ID}, exitAuth, []string{"code: 40302", `missing: ["refund:create"]`}},
		{"403 delete a stronger key", as(admin.Key), []string{"keys", "delete", strong.ID}, exitAuth, []string{"code: 40302"}},
		{"404 get unknown", env, []string{"keys", "get", "key_doesnotexist0"}, exitNotFound, []string{"code: 40400", "request id: req_"}},
		{"404 get another account's key", env, []string{"keys", "get", other[apikey.Sandbox].SecretID}, exitNotFound, []string{"code: 40400"}},
		{"404 delete another account's key", env, []string{"keys", "delete", other[apikey.Sandbox].PublishableID}, exitNotFound, []string{"code: 40400"}},
		{"404 update unknown", env, []string{"keys", "update", "--name", "x", "key_doesnotexist0"}, exitNotFound, []string{"code: 40400"}},
		{"409 rename onto a taken name", env, []string{"keys", "update", "--name", "taken", k.ID}, exitError, []string{"code: 40900", "409"}},
		{"422 delete a managed key", env, []string{"keys", "delete", m.SecretID}, exitError, []string{"code: 42204", "422"}},
		{"422 rename a managed key", env, []string{"keys", "update", "--name", "mine", m.SecretID}, exitError, []string{"code: 42205"}},
		{"422 expiry in the past", env, []string{"keys", "update", "--expires-at", "2001-01-01T00:00:00Z", k.ID}, exitError, []string{"code: 4220"}},
		{"400 name with trailing space", env, []string{"keys", "update", "--name", "trailing ", k.ID}, exitError, []string{"code: 40000", "invalid body /name"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := cli(t, tc.env, tc.args...)
			wantCode(t, code, tc.want, out, errOut)
			if out != "" {
				t.Errorf("stdout on failure: %q", out)
			}
			contains(t, "stderr", errOut, tc.stderr...)
		})
	}
}

// tamperAuditEvent edits an event's row in the sandbox database behind the
// service's back, as someone with access to the database could.
func tamperAuditEvent(t *testing.T, e *testenv.Env, accountID string, seq int) {
	t.Helper()
	st, ok := e.Store.(*sqlite.Store)
	if !ok {
		t.Fatalf("store %T is not SQLite", e.Store)
	}
	res, err := st.DB(apikey.Sandbox).Exec(`UPDATE audit_events SET client_ip = '203.0.113.66' WHERE account_id = ? AND seq = ?`, accountID, seq)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("tampered with %d rows", n)
	}
}
