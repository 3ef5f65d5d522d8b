package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// These run the lifecycle methods end to end: this client against a real
// server on a real store (internal/testenv).

var ctx = context.Background()

// lifecycleEnv starts a server with account bootstrapped and returns the
// managed sandbox secret's client.
func lifecycleEnv(t *testing.T, account string) (*testenv.Env, testenv.Managed, *client.Client) {
	t.Helper()
	e := testenv.New(t, testenv.Config{})
	m := e.Bootstrap(account)[apikey.Sandbox]
	return e, m, e.Client(m.Secret)
}

func create(t *testing.T, c *client.Client, account, name string, perms client.Permissions) *client.APIKey {
	t.Helper()
	k, err := c.CreateAPIKey(ctx, account, client.CreateAPIKeyRequest{Name: name, Permissions: perms})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return k
}

// wantAPIError checks err's kind and code, and that it has a request id.
func wantAPIError(t *testing.T, what string, err error, kind error, code client.ErrorCode) {
	t.Helper()
	_ = requireAPIError(t, what, err, kind, code)
}

// requireAPIError is wantAPIError that also returns the error, for the checks
// of its details.
func requireAPIError(t *testing.T, what string, err error, kind error, code client.ErrorCode) *client.Error {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) || !errors.Is(err, kind) || ae.Code != code || ae.RequestID == "" {
		t.Fatalf("%s: %v, want %v with code %d and a request id", what, err, kind, code)
	}
	return ae
}

func TestGetAPIKey(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_get")
	k := create(t, c, "acct_get", "reader", client.Permissions{"payment": {"read"}})
	got, err := c.GetAPIKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != k.ID || got.Name != "reader" || got.Status != client.StatusActive || got.Deleted || got.Managed ||
		got.CreatedBy.ID != m.SecretID || got.CreatedBy.Kind != "key" {
		t.Fatalf("got %+v", got)
	}
	if want := k.Key[:len("sk_test_")] + "…" + k.Key[len(k.Key)-4:]; got.KeyHint == nil || *got.KeyHint != want {
		t.Fatalf("key_hint %v, want %s", got.KeyHint, want)
	}
	if strings.Contains(fmt.Sprintf("%+v", *got), k.Key) {
		t.Fatal("the view holds the secret")
	}
	// Managed keys read the same way.
	if mk, err := c.GetAPIKey(ctx, m.SecretID); err != nil || !mk.Managed {
		t.Fatalf("managed key: %+v %v", mk, err)
	}

	// Another account's key is not found, not forbidden: its existence does not leak.
	other := e.Bootstrap("acct_get_other")[apikey.Sandbox]
	_, err = c.GetAPIKey(ctx, other.SecretID)
	wantAPIError(t, "another account's key", err, client.ErrNotFound, client.CodeKeyNotFound)
	_, err = c.GetAPIKey(ctx, "key_doesnotexist0")
	wantAPIError(t, "unknown key", err, client.ErrNotFound, client.CodeKeyNotFound)
	// The live managed key of the same account is in the other mode: not found either.
	live := e.Bootstrap("acct_get_modes")
	_, err = e.Client(live[apikey.Sandbox].Secret).GetAPIKey(ctx, live[apikey.Live].SecretID)
	wantAPIError(t, "the other mode's key", err, client.ErrNotFound, client.CodeKeyNotFound)
	// Without account:api:key:read: 403.
	_, err = e.Client(k.Key).GetAPIKey(ctx, k.ID)
	wantAPIError(t, "without read", err, client.ErrForbidden, client.CodePermissionDenied)
}

func TestUpdateAPIKey(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_upd")
	k := create(t, c, "acct_upd", "worker", client.Permissions{"payment": {"read"}})

	// Disable: the secret stops authenticating at once; enable: it works again.
	v, err := c.UpdateAPIKey(ctx, k.ID, client.Disable())
	if err != nil || v.Status != client.StatusInactive {
		t.Fatalf("disable: %+v %v", v, err)
	}
	_, err = e.Client(k.Key).GetAPIKey(ctx, k.ID)
	wantAPIError(t, "a disabled key's secret", err, client.ErrUnauthorized, client.CodeInvalidCredentials)
	if v, err = c.UpdateAPIKey(ctx, k.ID, client.Enable()); err != nil || v.Status != client.StatusActive {
		t.Fatalf("enable: %+v %v", v, err)
	}
	_, err = e.Client(k.Key).GetAPIKey(ctx, k.ID) // authenticates again; lacks read
	wantAPIError(t, "an enabled key's secret", err, client.ErrForbidden, client.CodePermissionDenied)

	// Name, metadata (replaced whole) and an earlier expiry together.
	if _, err := c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{Metadata: &client.Metadata{"a": "1", "b": "2"}}); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(72 * time.Hour).UTC().Truncate(time.Second)
	v, err = c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{
		Name: client.Ptr("worker 2"), Metadata: &client.Metadata{"b": "3"}, ExpiresAt: client.Ptr(exp)})
	if err != nil {
		t.Fatal(err)
	}
	if v.Name != "worker 2" || len(v.Metadata) != 1 || v.Metadata["b"] != "3" || v.ExpiresAt == nil || !v.ExpiresAt.Equal(exp) {
		t.Fatalf("updated %+v", v)
	}
	if got, _ := c.GetAPIKey(ctx, k.ID); got.Name != "worker 2" || got.ExpiresAt == nil {
		t.Fatalf("read back %+v", got)
	}
	// Expiry moves only earlier.
	_, err = c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{ExpiresAt: client.Ptr(exp.Add(time.Hour))})
	wantAPIError(t, "a later expiry", err, client.ErrUnprocessable, client.CodeExpiryExtended)

	// Renaming onto a taken name: 409 40900.
	create(t, c, "acct_upd", "taken", client.Permissions{"payment": {"read"}})
	_, err = c.UpdateAPIKey(ctx, k.ID, client.Rename("taken"))
	wantAPIError(t, "rename onto a taken name", err, client.ErrConflict, client.CodeDuplicateName)

	// A managed key's name is fixed: 422 42205.
	_, err = c.UpdateAPIKey(ctx, m.SecretID, client.Rename("mine"))
	wantAPIError(t, "rename a managed key", err, client.ErrUnprocessable, client.CodeManagedKeyFixed)

	// An empty update is a schema error: the client refuses it before
	// sending; the server would answer 400 (the raw client sends it).
	_, err = c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{})
	if !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("an empty update: %v, want an ErrInvalidArgument", err)
	}
	res, err := c.Raw().UpdateAPIKeyWithBodyWithResponse(ctx, k.ID, "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "an empty update", client.ParseError(res.HTTPResponse, res.Body), client.ErrInvalidRequest, client.CodeValidationFailed)

	// Another account's key: 404.
	other := e.Bootstrap("acct_upd_other")[apikey.Sandbox]
	_, err = c.UpdateAPIKey(ctx, other.SecretID, client.Disable())
	wantAPIError(t, "another account's key", err, client.ErrNotFound, client.CodeKeyNotFound)
}

// A key that may update and delete keys cannot touch one holding a
// permission it lacks: 403 40302, for update and delete alike.
func TestUpdateAndDeleteAStrongerKey(t *testing.T) {
	e, _, c := lifecycleEnv(t, "acct_power")
	admin := create(t, c, "acct_power", "admin", client.Permissions{"account:api:key": {"read", "update", "delete"}, "payment": {"read"}})
	stronger := create(t, c, "acct_power", "refunds", client.Permissions{"refund": {"create"}, "payment": {"read"}})
	weaker := create(t, c, "acct_power", "reader", client.Permissions{"payment": {"read"}})
	adminC := e.Client(admin.Key)
	_, err := adminC.UpdateAPIKey(ctx, stronger.ID, client.Disable())
	ae := requireAPIError(t, "update a stronger key", err, client.ErrForbidden, client.CodePrivilegeEscalation)
	if !strings.Contains(fmt.Sprint(ae.Details["missing"]), "refund:create") {
		t.Errorf("details %v lack missing refund:create", ae.Details)
	}
	_, err = adminC.DeleteAPIKey(ctx, stronger.ID)
	wantAPIError(t, "delete a stronger key", err, client.ErrForbidden, client.CodePrivilegeEscalation)
	if k, _ := c.GetAPIKey(ctx, stronger.ID); k.Status != client.StatusActive || k.Deleted {
		t.Fatalf("a refused request changed the key: %+v", k)
	}
	// A key holding no more than the admin: allowed.
	if _, err := adminC.UpdateAPIKey(ctx, weaker.ID, client.Disable()); err != nil {
		t.Fatal(err)
	}
	if _, err := adminC.DeleteAPIKey(ctx, weaker.ID); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteAPIKey(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_del")
	k := create(t, c, "acct_del", "doomed", client.Permissions{"payment": {"read"}})
	first, err := c.DeleteAPIKey(ctx, k.ID)
	if err != nil || !first.Deleted || first.ID != k.ID {
		t.Fatalf("delete: %+v %v", first, err)
	}
	// Deleting again answers 200 with the deleted key: a retry needs no care.
	second, err := c.DeleteAPIKey(ctx, k.ID)
	if err != nil || !second.Deleted || !second.UpdatedAt.Equal(first.UpdatedAt) {
		t.Fatalf("second delete: %+v %v", second, err)
	}
	// The secret no longer authenticates; the key still reads, as deleted.
	_, err = e.Client(k.Key).GetAPIKey(ctx, k.ID)
	wantAPIError(t, "a deleted key's secret", err, client.ErrUnauthorized, client.CodeInvalidCredentials)
	if got, err := c.GetAPIKey(ctx, k.ID); err != nil || !got.Deleted {
		t.Fatalf("get deleted: %+v %v", got, err)
	}
	// The name is free again.
	create(t, c, "acct_del", "doomed", client.Permissions{"payment": {"read"}})
	// A deleted key cannot change.
	_, err = c.UpdateAPIKey(ctx, k.ID, client.Enable())
	wantAPIError(t, "update a deleted key", err, client.ErrConflict, client.CodeKeyDeleted)

	// Managed keys are rotated, never deleted: 422 42204.
	_, err = c.DeleteAPIKey(ctx, m.SecretID)
	wantAPIError(t, "delete a managed key", err, client.ErrUnprocessable, client.CodeManagedKeyNotDeletable)
	// Another account's key: 404.
	other := e.Bootstrap("acct_del_other")[apikey.Sandbox]
	_, err = c.DeleteAPIKey(ctx, other.PublishableID)
	wantAPIError(t, "another account's key", err, client.ErrNotFound, client.CodeKeyNotFound)
}

// countingTransport counts the requests a client sends.
type countingTransport struct{ n atomic.Int32 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

func TestListAPIKeysEveryPageExactlyOnce(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_list")
	var want []string
	for i := range 23 {
		want = append(want, create(t, c, "acct_list", fmt.Sprintf("key %02d", i), client.Permissions{"payment": {"read"}}).ID)
	}
	rt := &countingTransport{}
	lc, err := client.New(e.URL, m.Secret, client.WithHTTPClient(&http.Client{Transport: rt}), client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for k, err := range lc.ListAPIKeys(ctx, "acct_list", client.ListAPIKeysOptions{Limit: 5, Managed: client.Ptr(false)}) {
		if err != nil {
			t.Fatal(err)
		}
		if k.KeyHint == nil || k.Managed {
			t.Fatalf("listed %+v", k)
		}
		got = append(got, k.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d keys %v\nwant %d in creation order %v", len(got), got, len(want), want)
	}
	if n := rt.n.Load(); n != 5 {
		t.Fatalf("%d requests for 23 keys at 5 a page, want 5", n)
	}

	// Filters.
	count := func(opts client.ListAPIKeysOptions) int {
		t.Helper()
		keys, err := client.Collect(c.ListAPIKeys(ctx, "acct_list", opts))
		if err != nil {
			t.Fatal(err)
		}
		return len(keys)
	}
	if _, err := c.UpdateAPIKey(ctx, want[0], client.Disable()); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAPIKey(ctx, want[1]); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		opts client.ListAPIKeysOptions
		want int
	}{
		{"default: not deleted", client.ListAPIKeysOptions{}, 22 + 2},
		{"managed", client.ListAPIKeysOptions{Managed: client.Ptr(true)}, 2},
		{"publishable", client.ListAPIKeysOptions{Type: client.TypePublishable}, 1},
		{"inactive", client.ListAPIKeysOptions{Status: client.StatusInactive}, 1},
		{"active", client.ListAPIKeysOptions{Status: client.StatusActive, Limit: 100}, 21 + 2},
		{"deleted", client.ListAPIKeysOptions{Deleted: true}, 1},
		{"created by the managed key", client.ListAPIKeysOptions{CreatedBy: m.SecretID}, 22},
		{"created by bootstrap", client.ListAPIKeysOptions{CreatedBy: "bootstrap"}, 2},
	} {
		if got := count(tc.opts); got != tc.want {
			t.Errorf("%s: %d keys, want %d", tc.name, got, tc.want)
		}
	}

	// One page by hand.
	page, err := c.ListAPIKeysPage(ctx, "acct_list", client.ListAPIKeysOptions{Limit: 3, Managed: client.Ptr(false)})
	if err != nil || len(page.Data) != 3 || !page.HasMore || page.NextCursor == nil {
		t.Fatalf("page: %+v %v", page, err)
	}
	rest, err := client.Collect(c.ListAPIKeys(ctx, "acct_list", client.ListAPIKeysOptions{Managed: client.Ptr(false), Cursor: *page.NextCursor}))
	if err != nil || len(rest) != 22-3 {
		t.Fatalf("from the cursor: %d keys, %v", len(rest), err)
	}

	// Errors: another account; a bad limit is refused before any request,
	// and the server refuses it too when it gets one.
	e.Bootstrap("acct_list_other")
	_, err = client.Collect(c.ListAPIKeys(ctx, "acct_list_other", client.ListAPIKeysOptions{}))
	wantAPIError(t, "another account", err, client.ErrForbidden, client.CodeAccountForbidden)
	var argErr *client.ArgumentError
	_, err = client.Collect(c.ListAPIKeys(ctx, "acct_list", client.ListAPIKeysOptions{Limit: 101}))
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &argErr) || argErr.Name != "ListAPIKeysOptions.Limit" {
		t.Fatalf("limit 101: %v", err)
	}
	res, err := c.Raw().ListAPIKeysWithResponse(ctx, &oapi.ListAPIKeysParams{AccountID: "acct_list", Limit: client.Ptr(101)})
	if err != nil {
		t.Fatal(err)
	}
	wantAPIError(t, "limit 101 sent", client.ParseError(res.HTTPResponse, res.Body), client.ErrInvalidRequest, client.CodeValidationFailed)
}

// The iterator stops at the first error: here the listing key is deleted
// after the first page, so the second request is refused (401).
func TestListAPIKeysStopsOnAnError(t *testing.T) {
	e, _, c := lifecycleEnv(t, "acct_stop")
	lister := create(t, c, "acct_stop", "lister", client.Permissions{"account:api:key": {"read"}})
	for i := range 9 {
		create(t, c, "acct_stop", fmt.Sprintf("k%d", i), client.Permissions{"payment": {"read"}})
	}
	keys, errs := 0, 0
	for _, err := range e.Client(lister.Key).ListAPIKeys(ctx, "acct_stop", client.ListAPIKeysOptions{Limit: 4}) {
		if err != nil {
			errs++
			wantAPIError(t, "after the lister was deleted", err, client.ErrUnauthorized, client.CodeInvalidCredentials)
			continue // the iterator must end by itself
		}
		if keys++; keys == 4 {
			if _, err := c.DeleteAPIKey(ctx, lister.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	if keys != 4 || errs != 1 {
		t.Fatalf("%d keys and %d errors, want 4 and 1", keys, errs)
	}
}

func TestListAuditEventsAndVerifyTheChain(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_audit")
	k := create(t, c, "acct_audit", "audited", client.Permissions{"payment": {"read"}})
	steps := []func() error{
		func() error { _, err := c.UpdateAPIKey(ctx, k.ID, client.Disable()); return err },
		func() error { _, err := c.UpdateAPIKey(ctx, k.ID, client.Enable()); return err },
		func() error {
			_, err := c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{Name: client.Ptr("audited <&> é"), Metadata: &client.Metadata{"t": "x"}})
			return err
		},
		func() error {
			_, err := c.UpdateAPIKey(ctx, k.ID, client.UpdateAPIKeyRequest{ExpiresAt: client.Ptr(time.Now().Add(time.Hour))})
			return err
		},
		func() error {
			// Rotated with a grace period: the previous secret manages
			// nothing from now on, so go on with the new one.
			rotated, err := c.RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(time.Hour))
			if err == nil {
				c = e.Client(rotated.Key)
			}
			return err
		},
		func() error { _, err := c.DeleteAPIKey(ctx, k.ID); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	events, err := client.Collect(c.ListAuditEvents(ctx, "acct_audit", client.ListAuditEventsOptions{Limit: 3}))
	if err != nil {
		t.Fatal(err)
	}
	// bootstrap ×2, create, disable, enable, update, update, regenerate, delete; newest first.
	wantActions := []client.AuditAction{client.AuditDelete, client.AuditRegenerate, client.AuditUpdate, client.AuditUpdate,
		client.AuditEnable, client.AuditDisable, client.AuditCreate, client.AuditBootstrap, client.AuditBootstrap}
	var actions []client.AuditAction
	for i, ev := range events {
		actions = append(actions, ev.Action)
		if ev.Seq != len(events)-i || ev.AccountID != "acct_audit" || ev.Mode != "test" || ev.Hash == "" {
			t.Fatalf("event %d: %+v", i, ev)
		}
	}
	if !slices.Equal(actions, wantActions) {
		t.Fatalf("actions %v, want %v", actions, wantActions)
	}
	if ev := events[0]; ev.KeyID != k.ID || ev.Actor.ID != m.SecretID || ev.Actor.Kind != "key" || ev.Actor.RequestID == "" ||
		ev.ClientIP == "" || ev.Changes["deleted"] != true {
		t.Fatalf("delete event %+v", ev)
	}
	for _, ev := range events {
		for _, v := range ev.Changes {
			if s, ok := v.(string); ok && (strings.HasPrefix(s, "sk_test_") && !strings.Contains(s, "…")) {
				t.Fatalf("event %d holds a secret: %v", ev.Seq, ev.Changes)
			}
		}
	}

	// Filters.
	byKey, err := client.Collect(c.ListAuditEvents(ctx, "acct_audit", client.ListAuditEventsOptions{KeyID: k.ID}))
	if err != nil || len(byKey) != 6 {
		t.Fatalf("events of %s: %d %v", k.ID, len(byKey), err)
	}
	disables, err := client.Collect(c.ListAuditEvents(ctx, "acct_audit", client.ListAuditEventsOptions{Action: client.AuditDisable}))
	if err != nil || len(disables) != 1 || disables[0].Changes["status"] != "INACTIVE" {
		t.Fatalf("disable events: %+v %v", disables, err)
	}
	page, err := c.ListAuditEventsPage(ctx, "acct_audit", client.ListAuditEventsOptions{Limit: 2})
	if err != nil || len(page.Data) != 2 || !page.HasMore || page.Data[0].Seq != 9 {
		t.Fatalf("first page %+v %v", page, err)
	}

	// The chain holds, in any order; each hash recomputes.
	if err := client.VerifyAuditChain(events); err != nil {
		t.Fatalf("real events: %v", err)
	}
	for _, ev := range events {
		if h, err := client.AuditEventHash(&ev); err != nil || h != ev.Hash {
			t.Fatalf("seq %d: recomputed %s, served %s (%v)", ev.Seq, h, ev.Hash, err)
		}
	}
	slices.Reverse(events)
	if err := client.VerifyAuditChain(events); err != nil {
		t.Fatalf("oldest first: %v", err)
	}
	// An edited event breaks it at its seq.
	edited := slices.Clone(events)
	edited[5].Changes = map[string]any{"name": "audited", "metadata": map[string]any{"t": "x"}} // seq 6 (update) claims another name
	var ce *client.AuditChainError
	if err := client.VerifyAuditChain(edited); !errors.As(err, &ce) || ce.Seq != 6 || ce.AccountID != "acct_audit" {
		t.Fatalf("edited event: %v", err)
	}
	// A filtered list is not a chain.
	if err := client.VerifyAuditChain(byKey); !errors.As(err, &ce) || ce.Seq != 1 {
		t.Fatalf("filtered events: %v", err)
	}

	// Reading events needs account:audit:read.
	_, err = client.Collect(e.Client(k.Key).ListAuditEvents(ctx, "acct_audit", client.ListAuditEventsOptions{}))
	wantAPIError(t, "a deleted key", err, client.ErrUnauthorized, client.CodeInvalidCredentials)
	reader := create(t, c, "acct_audit", "keys reader", client.Permissions{"account:api:key": {"read"}})
	_, err = client.Collect(e.Client(reader.Key).ListAuditEvents(ctx, "acct_audit", client.ListAuditEventsOptions{}))
	wantAPIError(t, "without account:audit:read", err, client.ErrForbidden, client.CodePermissionDenied)
}

// Rows changed in the database behind the service's back: VerifyAuditChain
// finds an edit and a removal in the middle by their seq; a removal at the
// newest end still verifies (documented: only the server, which keeps the
// account's head, sees it).
func TestVerifyAuditChainAgainstTheDatabase(t *testing.T) {
	e := testenv.New(t, testenv.Config{})
	st, ok := e.Store.(*sqlite.Store)
	if !ok {
		t.Fatalf("store %T is not SQLite", e.Store)
	}
	db := st.DB(apikey.Sandbox)
	// Each account: bootstrap ×2, then create and disable a key: 4 events.
	chain := func(account string) *client.Client {
		c := e.Client(e.Bootstrap(account)[apikey.Sandbox].Secret)
		k := create(t, c, account, "k", client.Permissions{"payment": {"read"}})
		if _, err := c.UpdateAPIKey(ctx, k.ID, client.Disable()); err != nil {
			t.Fatal(err)
		}
		return c
	}
	exec := func(q string, args ...any) {
		t.Helper()
		res, err := db.Exec(q, args...)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s changed %d rows", q, n)
		}
	}
	verify := func(c *client.Client, account string) (int, error) {
		t.Helper()
		events, err := client.Collect(c.ListAuditEvents(ctx, account, client.ListAuditEventsOptions{Limit: 100}))
		if err != nil {
			t.Fatal(err)
		}
		return len(events), client.VerifyAuditChain(events)
	}
	var ce *client.AuditChainError

	newest := chain("acct_newest")
	exec(`DELETE FROM audit_events WHERE account_id = ? AND seq = 4`, "acct_newest")
	if n, err := verify(newest, "acct_newest"); n != 3 || err != nil {
		t.Fatalf("removed the newest: %d events, %v (a client cannot see this)", n, err)
	}
	if _, err := apikeys.VerifyAudit(ctx, e.Store); err == nil || !strings.Contains(err.Error(), "acct_newest") {
		t.Fatalf("the server's verification: %v", err)
	}

	edited := chain("acct_edited")
	if _, err := verify(edited, "acct_edited"); err != nil {
		t.Fatalf("intact: %v", err)
	}
	exec(`UPDATE audit_events SET changes = '{"status":"ACTIVE"}' WHERE account_id = ? AND seq = 4`, "acct_edited")
	if _, err := verify(edited, "acct_edited"); !errors.As(err, &ce) || ce.Seq != 4 || ce.Mode != "test" || !strings.Contains(ce.Reason, "hash") {
		t.Fatalf("edited changes: %v", err)
	}
	exec(`UPDATE audit_events SET actor_id = 'someone' WHERE account_id = ? AND seq = 2`, "acct_edited")
	if _, err := verify(edited, "acct_edited"); !errors.As(err, &ce) || ce.Seq != 2 {
		t.Fatalf("edited actor: %v, want the first broken seq, 2", err)
	}

	middle := chain("acct_middle")
	exec(`DELETE FROM audit_events WHERE account_id = ? AND seq = 3`, "acct_middle")
	if n, err := verify(middle, "acct_middle"); n != 3 || !errors.As(err, &ce) || ce.Seq != 3 || !strings.Contains(ce.Reason, "missing") {
		t.Fatalf("removed seq 3: %d events, %v", n, err)
	}

}

// The grace periods the client refuses before sending are those the server
// refuses: 7 days passes both, a minute more is refused by both (by the
// client without a request), and so is a duration in seconds, which the
// server could not even be told.
func TestGracePeriodBoundsMatchTheServer(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_grace")
	rt := &countingTransport{}
	lc, err := client.New(e.URL, m.Secret, client.WithHTTPClient(&http.Client{Transport: rt}))
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{client.MaxGracePeriod + time.Minute, 30 * time.Second, -time.Minute} {
		_, err := lc.RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(d))
		if !errors.Is(err, client.ErrInvalidArgument) {
			t.Fatalf("%v: %v", d, err)
		}
	}
	if n := rt.n.Load(); n != 0 {
		t.Fatalf("%d requests for refused grace periods", n)
	}
	for _, minutes := range []int{10081, -1} {
		res, err := c.Raw().RegenerateAPIKeyWithResponse(ctx, m.PublishableID, nil, oapi.RegenerateAPIKeyRequest{GracePeriodMinutes: client.Ptr(minutes)})
		if err != nil {
			t.Fatal(err)
		}
		ae := requireAPIError(t, fmt.Sprintf("%d minutes sent", minutes), client.ParseError(res.HTTPResponse, res.Body),
			client.ErrInvalidRequest, client.CodeValidationFailed)
		if len(ae.Fields) == 0 || ae.Fields[0].Field != "/grace_period_minutes" || ae.Fields[0].Location != client.LocationBody {
			t.Fatalf("%d minutes: fields %+v", minutes, ae.Fields)
		}
	}
	before := time.Now()
	k, err := lc.RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(client.MaxGracePeriod))
	if err != nil {
		t.Fatal(err)
	}
	if k.PreviousKeyExpiresAt == nil || k.PreviousKeyExpiresAt.Before(before.Add(client.MaxGracePeriod-time.Minute)) {
		t.Fatalf("previous_key_expires_at %v, want 7 days from now", k.PreviousKeyExpiresAt)
	}
	if rt.n.Load() != 1 {
		t.Fatalf("%d requests", rt.n.Load())
	}
}
