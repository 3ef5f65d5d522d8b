package apikeys_test

// The rules of Update, one row each, at the use case: a real SQLite store, a
// real authenticator turning secrets into principals, no HTTP. The server's
// tests prove the same rules end to end; here a row reads as the rule it
// states (who, on what, asking what → which answer, and whether anything
// was written). A pattern for the other use cases.

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// world is one account in sandbox mode with a few keys, and its clock.
type world struct {
	t       *testing.T
	svc     *apikeys.Service
	st      store.Store
	authn   *auth.Authenticator
	account string
	now     time.Time
	owner   *auth.Principal // the managed secret key
	ownerID string
	pkID    string // the managed publishable key
}

func newWorld(t *testing.T, st store.Store, account string) *world {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := perm.LoadCatalog(doc)
	if err != nil {
		t.Fatal(err)
	}
	w := &world{t: t, st: st, account: account, now: time.Now().UTC()}
	clock := func() time.Time { return w.now }
	w.svc = apikeys.New(st, catalog, apikeys.Options{Now: clock})
	w.authn = &auth.Authenticator{Store: st, Now: clock}
	issued, err := w.svc.Bootstrap(context.Background(), account, []apikey.Mode{apikey.Sandbox})
	if err != nil {
		t.Fatal(err)
	}
	for _, is := range issued {
		if is.Key.Type == apikey.TypeSecret {
			w.ownerID, w.owner = is.Key.ID, w.principal(is.Secret)
		} else {
			w.pkID = is.Key.ID
		}
	}
	return w
}

// principal is what the server's authentication makes of secret now.
func (w *world) principal(secret string) *auth.Principal {
	w.t.Helper()
	p, err := w.authn.Authenticate(context.Background(), "Bearer "+secret, "192.0.2.1")
	if err != nil {
		w.t.Fatalf("authenticate: %v", err)
	}
	return p
}

// key creates a custom key as the owner; it returns its id and its holder.
func (w *world) key(name string, perms map[string][]string, exp *time.Time) (string, *auth.Principal) {
	w.t.Helper()
	is, err := w.svc.Create(context.Background(), w.owner, w.account, apikeys.CreateInput{Name: name, Permissions: perms, ExpiresAt: exp})
	if err != nil {
		w.t.Fatalf("create %s: %v", name, err)
	}
	return is.Key.ID, w.principal(is.Secret)
}

// state is the account's keys (without last use) and audit chain length.
func (w *world) state() (map[string]apikey.Key, int) {
	w.t.Helper()
	repo := w.st.Repo(apikey.Sandbox)
	keys := map[string]apikey.Key{}
	for _, deleted := range []bool{false, true} {
		ks, err := repo.ListKeys(context.Background(), store.KeyFilter{AccountID: w.account, Deleted: deleted, Now: w.now, Limit: 100})
		if err != nil {
			w.t.Fatal(err)
		}
		for _, k := range ks {
			c := *k
			c.LastUsedAt, c.LastUsedIP = nil, nil
			keys[k.ID] = c
		}
	}
	events, err := repo.AuditChain(context.Background(), w.account)
	if err != nil {
		w.t.Fatal(err)
	}
	return keys, len(events)
}

var (
	every    = map[string][]string{"account:api:key": {"create", "read", "update", "delete"}, "payment": {"read", "create"}}
	updater  = map[string][]string{"account:api:key": {"update"}, "payment": {"read"}}
	readOnly = map[string][]string{"account:api:key": {"read"}, "payment": {"read"}}
	inactive = apikey.StatusInactive
)

func TestUpdateRules(t *testing.T) {
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	type row struct {
		name string
		// setup returns the caller and the id of the key it updates.
		setup func(w *world) (*auth.Principal, string)
		input func(w *world) apikeys.UpdateInput
		code  api.ErrorCode // 0: success
		wrote bool          // a key row and an audit event changed
	}
	rename := func(*world) apikeys.UpdateInput { n := "renamed"; return apikeys.UpdateInput{Name: &n} }
	disable := func(*world) apikeys.UpdateInput { return apikeys.UpdateInput{Status: &inactive} }
	expireIn := func(d time.Duration) func(w *world) apikeys.UpdateInput {
		return func(w *world) apikeys.UpdateInput { e := w.now.Add(d); return apikeys.UpdateInput{ExpiresAt: &e} }
	}
	target := func(w *world) string {
		id, _ := w.key("target", map[string][]string{"payment": {"read"}}, nil)
		return id
	}
	rows := []row{
		{name: "the owner renames a custom key", setup: func(w *world) (*auth.Principal, string) { return w.owner, target(w) },
			input: rename, wrote: true},
		{name: "the same name again changes nothing", setup: func(w *world) (*auth.Principal, string) { return w.owner, target(w) },
			input: func(*world) apikeys.UpdateInput { n := "target"; return apikeys.UpdateInput{Name: &n} }},
		{name: "a key with update may disable a key holding no more than it", setup: func(w *world) (*auth.Principal, string) {
			_, p := w.key("updater", updater, nil)
			return p, target(w)
		}, input: disable, wrote: true},
		{name: "without the update permission: 403", setup: func(w *world) (*auth.Principal, string) {
			_, p := w.key("reader", readOnly, nil)
			return p, target(w)
		}, input: disable, code: api.CodePermissionDenied},
		{name: "a key holding more than the caller: 403", setup: func(w *world) (*auth.Principal, string) {
			_, p := w.key("updater", updater, nil)
			id, _ := w.key("stronger", every, nil)
			return p, id
		}, input: disable, code: api.CodePrivilegeEscalation},
		{name: "another account's key is not found", setup: func(w *world) (*auth.Principal, string) {
			other := newWorld(w.t, w.st, w.account+"_other")
			return w.owner, target(other)
		}, input: disable, code: api.CodeKeyNotFound},
		{name: "a deleted key cannot change", setup: func(w *world) (*auth.Principal, string) {
			id := target(w)
			if _, err := w.svc.Delete(context.Background(), w.owner, id); err != nil {
				w.t.Fatal(err)
			}
			return w.owner, id
		}, input: rename, code: api.CodeKeyDeleted},
		{name: "a managed key's name is fixed", setup: func(w *world) (*auth.Principal, string) { return w.owner, w.pkID },
			input: rename, code: api.CodeManagedKeyFixed},
		{name: "a managed key's expiry is fixed", setup: func(w *world) (*auth.Principal, string) { return w.owner, w.pkID },
			input: expireIn(time.Hour), code: api.CodeManagedKeyFixed},
		{name: "the managed secret key is never switched off", setup: func(w *world) (*auth.Principal, string) { return w.owner, w.ownerID },
			input: disable, code: api.CodeManagedKeyFixed},
		{name: "the managed publishable key may be switched off", setup: func(w *world) (*auth.Principal, string) { return w.owner, w.pkID },
			input: disable, wrote: true},
		{name: "expiry moves earlier", setup: func(w *world) (*auth.Principal, string) {
			e := w.now.Add(48 * time.Hour)
			id, _ := w.key("expiring", map[string][]string{"payment": {"read"}}, &e)
			return w.owner, id
		}, input: expireIn(time.Hour), wrote: true},
		{name: "expiry never moves later", setup: func(w *world) (*auth.Principal, string) {
			e := w.now.Add(time.Hour)
			id, _ := w.key("expiring", map[string][]string{"payment": {"read"}}, &e)
			return w.owner, id
		}, input: expireIn(48 * time.Hour), code: api.CodeExpiryExtended},
		{name: "expiry in the past", setup: func(w *world) (*auth.Principal, string) { return w.owner, target(w) },
			input: expireIn(-time.Minute), code: api.CodeInvalidExpiry},
		// The re-check inside the unit: the principal was made while the
		// caller's key worked (as a cache may keep it); the key was deleted
		// since, so it changes nothing.
		{name: "a caller deleted since it authenticated: 401", setup: func(w *world) (*auth.Principal, string) {
			id, p := w.key("updater", updater, nil)
			if _, err := w.svc.Delete(context.Background(), w.owner, id); err != nil {
				w.t.Fatal(err)
			}
			return p, target(w)
		}, input: disable, code: api.CodeInvalidCredentials},
		{name: "a caller that expired since it authenticated: 401", setup: func(w *world) (*auth.Principal, string) {
			e := w.now.Add(time.Minute)
			_, p := w.key("updater", updater, &e)
			id := target(w)
			w.now = w.now.Add(time.Hour)
			return p, id
		}, input: rename, code: api.CodeExpiredCredentials},
	}
	for i, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			w := newWorld(t, st, "acct_update_"+string(rune('a'+i)))
			caller, id := r.setup(w)
			beforeKeys, beforeEvents := w.state()
			_, err := w.svc.Update(context.Background(), caller, id, r.input(w))
			var ae *apierr.Error
			switch {
			case r.code == 0 && err != nil:
				t.Fatalf("want success, got %v", err)
			case r.code != 0 && (!errors.As(err, &ae) || ae.Code != r.code):
				t.Fatalf("got %v; want %d", err, r.code)
			}
			afterKeys, afterEvents := w.state()
			changed := !reflect.DeepEqual(beforeKeys, afterKeys)
			if changed != r.wrote || (afterEvents != beforeEvents) != r.wrote {
				t.Fatalf("keys changed %v, %d audit events added; want written=%v", changed, afterEvents-beforeEvents, r.wrote)
			}
		})
	}
}
