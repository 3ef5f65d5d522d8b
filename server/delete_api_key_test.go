package server_test

import (
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// DELETE /api-keys/{id}: a subtest per documented status.
func TestDeleteAPIKey(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)

		t.Run("200 revokes the secret and any grace secret at once, frees the name", func(t *testing.T) {
			k := customKey(t, env, m, "leaked", client.Permissions{"account:api:key": {"read"}}, nil)
			if _, err := getKey(t, env.Client(k.Key), k.ID); err != nil {
				t.Fatalf("before: %v", err)
			}
			v, err := deleteKey(t, admin, k.ID)
			if err != nil || !v.Deleted || v.ID != k.ID {
				t.Fatalf("%+v %v", v, err)
			}
			refusedNow(t, env, k.Key)
			// The name is free again.
			customKey(t, env, m, "leaked", client.Permissions{}, nil)
		})
		t.Run("200 again for a deleted key (idempotent), one audit event", func(t *testing.T) {
			k := customKey(t, env, m, "twice", client.Permissions{}, nil)
			for i := 0; i < 2; i++ {
				v, err := deleteKey(t, admin, k.ID)
				if err != nil || !v.Deleted {
					t.Fatalf("delete #%d: %+v %v", i+1, v, err)
				}
			}
			page, err := auditPage(t, admin, oapi.ListAuditEventsParams{AccountID: acct, KeyID: &k.ID, Action: ptr(oapi.AuditDelete)})
			if err != nil || len(page.Data) != 1 {
				t.Fatalf("delete events: %+v %v", page, err)
			}
		})
		t.Run("400 malformed id", func(t *testing.T) {
			_, err := deleteKey(t, admin, "key_../x")
			wantAPIError(t, err, 400, client.CodeValidationFailed)
		})
		t.Run("401 revoked caller", func(t *testing.T) {
			k := customKey(t, env, m, "deleter", client.Permissions{"account:api:key": {"delete"}}, nil)
			if _, err := deleteKey(t, admin, k.ID); err != nil {
				t.Fatal(err)
			}
			_, err := deleteKey(t, env.Client(k.Key), m.PublishableID)
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 power: a key cannot revoke one holding more", func(t *testing.T) {
			// It may read keys, so the refusal lists what it lacks.
			weak := customKey(t, env, m, "weak deleter", client.Permissions{"account:api:key": {"delete", "read"}}, nil)
			strong := customKey(t, env, m, "strong", client.Permissions{"payment": {"create"}}, nil)
			_, err := deleteKey(t, env.Client(weak.Key), strong.ID)
			ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation)
			if len(toStrings(ae.Details["missing"])) == 0 {
				t.Fatalf("details %v", ae.Details)
			}
			_, err = deleteKey(t, env.Client(m.Publishable), strong.ID)
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
		})
		t.Run("403 life: an expiring key cannot revoke one that outlives it", func(t *testing.T) {
			hour := time.Now().Add(time.Hour)
			short := customKey(t, env, m, "short deleter", client.Permissions{"account:api:key": {"delete"}}, &hour)
			forever := customKey(t, env, m, "forever", client.Permissions{}, nil)
			_, err := deleteKey(t, env.Client(short.Key), forever.ID)
			wantAPIError(t, err, 403, client.CodeLifetimeEscalation)
		})
		t.Run("404 unknown or another account's key", func(t *testing.T) {
			_, err := deleteKey(t, admin, "key_doesnotexist0000")
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
			other := env.Bootstrap("acct_other_del")[sandbox]
			theirs, err := env.Client(other.Secret).CreateAPIKey(ctx, "acct_other_del", newKeyReq("theirs", client.Permissions{}))
			if err != nil {
				t.Fatal(err)
			}
			_, err = deleteKey(t, admin, theirs.ID)
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
		})
		t.Run("422 managed keys are rotated, never deleted", func(t *testing.T) {
			_, err := deleteKey(t, admin, m.PublishableID)
			wantAPIError(t, err, 422, client.CodeManagedKeyNotDeletable)
		})
	})
}

// Delete authorizes before it answers anything about the key (issue 17): a
// delete-only key is refused (40302, no details.missing: it may not read
// keys) a key stronger than itself even when that key is already deleted,
// and the key it may delete comes back without metadata or last use.
func TestDeleteRevealsOnlyWhatTheCallerMayRead(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		delOnly := customKey(t, env, m, "deleter", client.Permissions{"account:api:key": {"delete"}}, nil)
		delRead := customKey(t, env, m, "reading deleter", client.Permissions{"account:api:key": {"delete", "read"}, "payment": {"create"}}, nil)

		// (b) an already deleted key stronger than the caller.
		strong := customKey(t, env, m, "strong", client.Permissions{"payment": {"create"}}, nil)
		if _, err := deleteKey(t, admin, strong.ID); err != nil {
			t.Fatal(err)
		}
		_, err := deleteKey(t, env.Client(delOnly.Key), strong.ID)
		if ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation); ae.Details["missing"] != nil {
			t.Fatalf("a non-reader is told the key's permissions: %v", ae.Details)
		}
		if v, err := deleteKey(t, env.Client(delRead.Key), strong.ID); err != nil || !v.Deleted {
			t.Fatalf("a caller with power over the deleted key: %+v %v", v, err)
		}

		// A key it may delete: the answer shows no more than the deletion.
		weak := customKey(t, env, m, "weak", client.Permissions{}, nil)
		meta := client.Metadata{"team": "payments"}
		if _, err := updateKey(t, admin, weak.ID, client.UpdateAPIKeyRequest{Metadata: &meta}); err != nil {
			t.Fatal(err)
		}
		_, _ = getKey(t, env.Client(weak.Key), weak.ID) // a use: 403, but authenticated
		// Twice: the second answers the key as it is, already deleted.
		for i := 0; i < 2; i++ {
			v, err := deleteKey(t, env.Client(delOnly.Key), weak.ID)
			if err != nil || !v.Deleted || v.ID != weak.ID || v.Metadata == nil || len(v.Metadata) != 0 || v.LastUsedAt != nil || v.LastUsedIP != nil {
				t.Fatalf("delete #%d by a non-reader: %+v %v", i+1, v, err)
			}
		}
		v, err := deleteKey(t, env.Client(delRead.Key), weak.ID)
		if err != nil || v.Metadata["team"] != "payments" || v.LastUsedAt == nil {
			t.Fatalf("a reader's view of the deleted key: %+v %v", v, err)
		}
	})
}
