package server_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// GET /audit-events: a subtest per documented status; every change leaves
// one event, in order, chained; tampering with the rows is detected.
func TestListAuditEvents(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)

		// One change of every kind.
		k := customKey(t, env, m, "audited", client.Permissions{"payment": {"read"}}, nil)
		if _, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("audited 2")}); err != nil {
			t.Fatal(err)
		}
		if _, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
		if _, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)}); err != nil {
			t.Fatal(err)
		}
		if _, err := deleteKey(t, admin, k.ID); err != nil {
			t.Fatal(err)
		}
		rot, err := admin.RegenerateAPIKey(ctx, m.PublishableID)
		if err != nil {
			t.Fatal(err)
		}

		t.Run("200 every change, newest first, chained, no secrets", func(t *testing.T) {
			res, err := admin.Raw().ListAuditEventsWithResponse(ctx, &oapi.ListAuditEventsParams{AccountID: acct})
			if err != nil || res.StatusCode() != 200 {
				t.Fatalf("%v %s", err, res.Body)
			}
			for _, s := range []string{k.Key, rot.Key, m.Secret, m.Publishable} {
				if strings.Contains(string(res.Body), s) || strings.Contains(string(res.Body), s[8:]) {
					t.Fatal("an audit event holds a secret")
				}
			}
			events := auditAll(t, admin, acct)
			var actions []string
			for i, e := range events {
				actions = append([]string{string(e.Action)}, actions...)
				if i > 0 && (e.Seq != events[i-1].Seq-1 || events[i-1].PrevHash != e.Hash) {
					t.Fatalf("events %d and %d are not chained", events[i-1].Seq, e.Seq)
				}
				if e.Actor.RequestID == "" && e.Action != client.AuditBootstrap {
					t.Fatalf("event %d has no request id", e.Seq)
				}
			}
			want := "bootstrap bootstrap create update disable enable delete regenerate"
			if strings.Join(actions, " ") != want {
				t.Fatalf("actions %v, want %s", actions, want)
			}
			if ev := events[len(events)-3]; ev.KeyID != k.ID || ev.Changes["name"] != "audited" || ev.Actor.ID != m.SecretID || ev.ClientIP == "" {
				t.Fatalf("create event %+v", ev)
			}
			if n, err := apikeys.VerifyAudit(ctx, env.Store); err != nil || n < len(events) {
				t.Fatalf("verify: %d events, %v", n, err)
			}
		})
		t.Run("200 filters and pages", func(t *testing.T) {
			page, err := auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, KeyID: &k.ID, Limit: ptr(2)})
			if err != nil || len(page.Data) != 2 || !page.HasMore || page.Data[0].Action != client.AuditDelete {
				t.Fatalf("%+v %v", page, err)
			}
			page, err = auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, KeyID: &k.ID, Limit: ptr(2), Cursor: page.NextCursor})
			if err != nil || len(page.Data) != 2 || page.Data[0].Action != client.AuditDisable {
				t.Fatalf("%+v %v", page, err)
			}
			page, err = auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, Action: ptr(oapi.AuditRegenerate)})
			if err != nil || len(page.Data) != 1 || page.Data[0].KeyID != m.PublishableID {
				t.Fatalf("%+v %v", page, err)
			}
		})
		t.Run("200 an empty page of an account that exists", func(t *testing.T) {
			// The page is read before the account's existence, which only an
			// empty page asks: an empty page is still the account's.
			none := "key_none"
			page, err := auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, KeyID: &none})
			if err != nil || len(page.Data) != 0 || page.HasMore || page.NextCursor != nil {
				t.Fatalf("%+v %v", page, err)
			}
		})
		t.Run("400 unknown action", func(t *testing.T) {
			_, err := auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, Action: ptr(oapi.AuditAction("explode"))})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
		})
		t.Run("401 unknown credential", func(t *testing.T) {
			_, err := auditPage(t, env.Client("sk_test_nope"), oapi.ListAuditEventsParams{AccountID: acct})
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 without account:audit:read, publishable, other account", func(t *testing.T) {
			reader := customKey(t, env, m, "key reader", client.Permissions{"account:api:key": {"read"}}, nil)
			_, err := auditPage(t, env.Client(reader.Key), oapi.ListAuditEventsParams{AccountID: acct})
			wantAPIError(t, err, 403, client.CodePermissionDenied)
			_, err = auditPage(t, env.Client(rot.Key), oapi.ListAuditEventsParams{AccountID: acct}) // the rotated publishable key
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
			env.Bootstrap("acct_other_audit")
			_, err = auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: "acct_other_audit"})
			wantAPIError(t, err, 403, client.CodeAccountForbidden)
		})
		t.Run("404 account that does not exist (JWT)", func(t *testing.T) {
			jwt := env.JWT.Sign(t, env.JWT.Claims("auditor", []string{"acct_ghost"}, []string{"account:audit:read"}, "test"))
			_, err := auditPage(t, env.Client(jwt), oapi.ListAuditEventsParams{AccountID: "acct_ghost"})
			wantAPIError(t, err, 404, client.CodeAccountNotFound)
		})
		t.Run("verify fails after a row is edited or the newest removed", func(t *testing.T) {
			exec := rawExec(t, env.Store, sandbox)
			exec(`UPDATE %s SET action = 'update' WHERE account_id = '` + acct + `' AND seq = 3`)
			_, err := apikeys.VerifyAudit(ctx, env.Store)
			var broken *audit.BrokenLink
			if !errors.As(err, &broken) || broken.Seq != 3 || broken.AccountID != acct {
				t.Fatalf("after editing seq 3: %v", err)
			}
			exec(`UPDATE %s SET action = 'create' WHERE account_id = '` + acct + `' AND seq = 3`)
			if _, err := apikeys.VerifyAudit(ctx, env.Store); err != nil {
				t.Fatalf("restored: %v", err)
			}
			exec(`DELETE FROM %s WHERE account_id = '` + acct + `' AND seq = (SELECT max(seq) FROM %[1]s WHERE account_id = '` + acct + `')`)
			if _, err := apikeys.VerifyAudit(ctx, env.Store); !errors.As(err, &broken) {
				t.Fatalf("after deleting the newest event: %v", err)
			}
		})
	})
}

// rawExec runs SQL on a mode's audit table behind the store's back; %s in
// the statement is the table's name.
func rawExec(t *testing.T, st store.Store, mode apikey.Mode) func(string) {
	return func(q string) {
		t.Helper()
		var err error
		switch s := st.(type) {
		case *sqlite.Store:
			_, err = s.DB(mode).ExecContext(context.Background(), strings.ReplaceAll(strings.ReplaceAll(q, "%[1]s", "audit_events"), "%s", "audit_events"))
		case *postgres.Store:
			table := postgres.Schemas[mode] + ".audit_events"
			_, err = s.Pool().Exec(context.Background(), strings.ReplaceAll(strings.ReplaceAll(q, "%[1]s", table), "%s", table))
		default:
			t.Fatalf("no raw access to %T", st)
		}
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

var _ = time.Now

// A change whose audit event cannot be written does not happen: the key
// change and its event are one unit (create, regenerate, update, delete).
func TestNoChangeWithoutItsEvent(t *testing.T) {
	inner, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	flaky := &hxFlakyStore{Store: inner}
	env := testenv.New(t, testenv.Config{Store: flaky})
	m := env.Bootstrap(acct)[sandbox]
	admin := env.Client(m.Secret)
	k := customKey(t, env, m, "kept", client.Permissions{}, nil)
	before := auditAll(t, admin, acct)

	flaky.state.Store(hxAuditDown)
	_, err = admin.CreateAPIKey(ctx, acct, newKeyReq("never", client.Permissions{}))
	wantAPIError(t, err, 500, client.CodeInternal)
	_, err = admin.RegenerateAPIKey(ctx, m.PublishableID)
	wantAPIError(t, err, 500, client.CodeInternal)
	_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)})
	wantAPIError(t, err, 500, client.CodeInternal)
	_, err = deleteKey(t, admin, k.ID)
	wantAPIError(t, err, 500, client.CodeInternal)
	flaky.state.Store(hxUp)

	if got := auditAll(t, admin, acct); len(got) != len(before) {
		t.Fatalf("%d events, want %d", len(got), len(before))
	}
	if v, err := getKey(t, admin, k.ID); err != nil || v.Deleted || v.Status != client.StatusActive {
		t.Fatalf("the key changed without its event: %+v %v", v, err)
	}
	if _, err := admin.CreateAPIKey(ctx, acct, newKeyReq("never", client.Permissions{})); err != nil {
		t.Fatalf("the refused create consumed its name: %v", err)
	}
	// The regenerate rolled back: the old publishable secret still authenticates
	// (and is refused as publishable, not as unknown).
	_, err = getKey(t, env.Client(m.Publishable), m.PublishableID)
	wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
	if _, err := apikeys.VerifyAudit(ctx, env.Store); err != nil {
		t.Fatal(err)
	}
}
