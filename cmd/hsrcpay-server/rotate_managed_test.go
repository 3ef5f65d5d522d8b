package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// rotateEdit changes a key of dir's SQLite store behind the service's back,
// as data from before a fix or a database edit would have it.
func rotateEdit(t *testing.T, dir, id string, fn func(*apikey.Key)) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = store.UpdateKey(context.Background(), st.Repo(apikey.Live), id, func(k *apikey.Key) error { fn(k); return nil })
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
}

// rotateRun runs the command and returns its exit code, keys and stderr.
func rotateRun(t *testing.T, args ...string) (int, map[string]managedKey, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	var res struct {
		Keys []managedKey `json:"keys"`
	}
	byType := map[string]managedKey{}
	if code == 0 {
		if err := json.Unmarshal(out.Bytes(), &res); err != nil {
			t.Fatalf("%v: output is not JSON: %v\n%s", args, err, out.String())
		}
		for _, k := range res.Keys {
			byType[k.Type] = k
		}
	} else if out.Len() != 0 {
		t.Fatalf("%v failed (exit %d) but printed %q", args, code, out.String())
	}
	return code, byType, errb.String()
}

// TestRotateManagedRestoresTheRootCredential: the account's managed secret
// key found switched off (data from before the API refused that, or a
// database edit) is the case rotate-managed exists for. It switches it back
// on and rotates it in one unit, with an enable and a regenerate event, says
// so, and the secret it prints authenticates through the Go client. A managed
// secret key that is deleted or expired cannot be restored: exit 1, a
// message, and nothing changed.
func TestRotateManagedRestoresTheRootCredential(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
	const account = "acct_root"
	code, boot, stderr := rotateRun(t, "bootstrap", "--account", account, "--mode", "live")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, stderr)
	}
	root := boot["SECRET"]
	rotateEdit(t, dir, root.ID, func(k *apikey.Key) { k.Status = apikey.StatusInactive })

	code, rotated, stderr := rotateRun(t, "rotate-managed", "--account", account, "--mode", "live")
	if code != 0 {
		t.Fatalf("rotate-managed: exit %d: %s", code, stderr)
	}
	secret := rotated["SECRET"]
	if secret.ID != root.ID || secret.Secret == root.Secret || !strings.Contains(stderr, root.ID) || !strings.Contains(stderr, "switched back on") {
		t.Fatalf("rotate-managed printed %+v, stderr %q", rotated, stderr)
	}

	st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.New(t, testenv.Config{Store: st})
	ctx := context.Background()
	c, err := client.New(env.URL, secret.Secret, client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.GetAPIKey(ctx, root.ID)
	if err != nil || v.Status != client.StatusActive {
		t.Fatalf("the printed secret: %+v %v", v, err)
	}
	if _, err := c.CreateAPIKey(ctx, account, client.CreateAPIKeyRequest{Name: "after recovery", Permissions: client.Permissions{}}); err != nil {
		t.Fatalf("the restored root credential cannot manage keys: %v", err)
	}
	old, _ := client.New(env.URL, root.Secret, client.WithRetries(0, 0))
	if _, err := old.GetAPIKey(ctx, root.ID); !errors.Is(err, client.ErrUnauthorized) {
		t.Fatalf("the old secret: %v", err)
	}
	var actions []string
	for e, err := range c.ListAuditEvents(ctx, account, client.ListAuditEventsOptions{KeyID: root.ID}) {
		if err != nil {
			t.Fatal(err)
		}
		if e.Actor.Kind == client.CreatedByPlatform && e.Action != client.AuditBootstrap {
			actions = append(actions, string(e.Action))
		}
	}
	// Newest first: the regenerate follows the enable.
	if strings.Join(actions, ",") != "regenerate,enable" {
		t.Fatalf("the platform's events on the root key: %v, want regenerate,enable", actions)
	}

	// A second run has nothing to repair: it says nothing about switching on.
	if code, _, stderr := rotateRun(t, "rotate-managed", "--account", account, "--mode", "live"); code != 0 || stderr != "" {
		t.Fatalf("second rotate-managed: exit %d, stderr %q", code, stderr)
	}

	// Deleted or expired: nothing can be restored, nothing changes.
	for _, tc := range []struct {
		name string
		edit func(*apikey.Key)
		want string
	}{
		{"expired", func(k *apikey.Key) {
			past := time.Now().Add(-time.Hour)
			k.ExpiresAt = &past
		}, "expired"},
		{"deleted", func(k *apikey.Key) { k.Deleted = true }, "no managed secret key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+dir)
			code, boot, stderr := rotateRun(t, "bootstrap", "--account", account, "--mode", "live")
			if code != 0 {
				t.Fatalf("bootstrap: exit %d: %s", code, stderr)
			}
			rotateEdit(t, dir, boot["SECRET"].ID, tc.edit)
			code, _, stderr = rotateRun(t, "rotate-managed", "--account", account, "--mode", "live")
			if code != 1 || !strings.Contains(stderr, tc.want) || !strings.Contains(stderr, "no working root credential") || !strings.Contains(stderr, "nothing was changed") {
				t.Fatalf("exit %d, stderr %q", code, stderr)
			}
			st, err := sqlite.Open(context.Background(), dir, sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = st.Close() }() // only read
			pub, err := st.Repo(apikey.Live).GetKey(context.Background(), boot["PUBLISHABLE"].ID)
			if err != nil || pub.KeyHint != boot["PUBLISHABLE"].Secret[:8]+"…"+boot["PUBLISHABLE"].Secret[len(boot["PUBLISHABLE"].Secret)-4:] {
				t.Fatalf("the publishable key was rotated anyway: %+v %v", pub, err)
			}
		})
	}
}
