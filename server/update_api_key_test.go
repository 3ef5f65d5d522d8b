package server_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// PATCH /api-keys/{id}: a subtest per documented status.
func TestUpdateAPIKey(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)

		t.Run("200 rename, metadata, earlier expiry", func(t *testing.T) {
			in2 := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
			k := customKey(t, env, m, "before", client.Permissions{}, &in2)
			in1 := in2.Add(-24 * time.Hour)
			meta := client.Metadata{"team": "payments"}
			v, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("after"), Metadata: &meta, ExpiresAt: &in1})
			if err != nil || v.Name != "after" || v.Metadata["team"] != "payments" || !v.ExpiresAt.Equal(in1) {
				t.Fatalf("%+v %v", v, err)
			}
			customKey(t, env, m, "before", client.Permissions{}, nil) // the old name is free
		})
		t.Run("200 disable refuses the secret at once; enable restores it", func(t *testing.T) {
			k := customKey(t, env, m, "switch", client.Permissions{"account:api:key": {"read"}}, nil)
			v, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)})
			if err != nil || v.Status != client.StatusInactive {
				t.Fatalf("%+v %v", v, err)
			}
			refusedNow(t, env, k.Key)
			if _, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)}); err != nil {
				t.Fatal(err)
			}
			if _, err := getKey(t, env.Client(k.Key), k.ID); err != nil {
				t.Fatalf("re-enabled key: %v", err)
			}
		})
		t.Run("400 empty body, unknown field, bad name", func(t *testing.T) {
			k := customKey(t, env, m, "valid", client.Permissions{}, nil)
			_, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
			_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("zero\u200bwidth")})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
		})
		t.Run("401 no token", func(t *testing.T) {
			_, err := updateKey(t, env.Client("Bearer"), m.PublishableID, client.UpdateAPIKeyRequest{Name: ptr("x")})
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 power and life", func(t *testing.T) {
			weak := customKey(t, env, m, "weak updater", client.Permissions{"account:api:key": {"update"}}, nil)
			strong := customKey(t, env, m, "strong target", client.Permissions{"refund": {"create"}}, nil)
			_, err := updateKey(t, env.Client(weak.Key), strong.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)})
			wantAPIError(t, err, 403, client.CodePrivilegeEscalation)
			// Switching the managed secret key off is editing the most powerful key.
			_, err = updateKey(t, env.Client(weak.Key), m.SecretID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)})
			wantAPIError(t, err, 403, client.CodePrivilegeEscalation)
			hour := time.Now().Add(time.Hour)
			short := customKey(t, env, m, "short updater", client.Permissions{"account:api:key": {"update"}}, &hour)
			forever := customKey(t, env, m, "forever target", client.Permissions{}, nil)
			_, err = updateKey(t, env.Client(short.Key), forever.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed")})
			wantAPIError(t, err, 403, client.CodeLifetimeEscalation)
		})
		t.Run("404 unknown or another account's key", func(t *testing.T) {
			_, err := updateKey(t, admin, "key_doesnotexist0000", client.UpdateAPIKeyRequest{Name: ptr("x")})
			wantAPIError(t, err, 404, client.CodeKeyNotFound)
		})
		t.Run("409 taken name, deleted key", func(t *testing.T) {
			customKey(t, env, m, "taken", client.Permissions{}, nil)
			k := customKey(t, env, m, "mover", client.Permissions{}, nil)
			_, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("taken")})
			wantAPIError(t, err, 409, client.CodeDuplicateName)
			if _, err := deleteKey(t, admin, k.ID); err != nil {
				t.Fatal(err)
			}
			_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("anything")})
			wantAPIError(t, err, 409, client.CodeKeyDeleted)
		})
		t.Run("422 managed name fixed, later or past expiry", func(t *testing.T) {
			_, err := updateKey(t, admin, m.PublishableID, client.UpdateAPIKeyRequest{Name: ptr("mine now")})
			wantAPIError(t, err, 422, client.CodeManagedKeyFixed)
			day := time.Now().Add(24 * time.Hour)
			k := customKey(t, env, m, "expiring", client.Permissions{}, &day)
			later := day.Add(time.Hour)
			_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{ExpiresAt: &later})
			wantAPIError(t, err, 422, client.CodeExpiryExtended)
			past := time.Now().Add(-time.Hour)
			_, err = updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{ExpiresAt: &past})
			wantAPIError(t, err, 422, client.CodeInvalidExpiry)
		})
	})
}

// Found by TestCredentialSafetyModel: sending the current expiry again
// changes and records nothing; and an expired key whose name was released
// still cannot be renamed onto a live key's name (40900), on both stores.
func TestUpdateModelFindings(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		exp := env.Clock.Now().Add(2 * time.Hour).UTC().Truncate(time.Second)
		k := customKey(t, env, m, "same expiry", client.Permissions{}, &exp)
		before := len(auditAll(t, admin, acct))
		v, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{ExpiresAt: &exp})
		if err != nil || !v.UpdatedAt.Equal(k.UpdatedAt) {
			t.Fatalf("an unchanged expiry moved updated_at: %+v %v", v, err)
		}
		if after := len(auditAll(t, admin, acct)); after != before {
			t.Fatalf("an unchanged expiry was recorded: %d events, want %d", after, before)
		}

		b := customKey(t, env, m, "b's name", client.Permissions{}, &exp)
		customKey(t, env, m, "taken", client.Permissions{}, nil)
		env.Clock.Advance(3 * time.Hour)                            // b expires
		customKey(t, env, m, "b's name", client.Permissions{}, nil) // releases b's name
		_, err = updateKey(t, admin, b.ID, client.UpdateAPIKeyRequest{Name: ptr("taken")})
		wantAPIError(t, err, 409, client.CodeDuplicateName)
	})
}

// The managed secret key is the account's root credential (issue 17): no
// credential switches it off, not even a peer holding exactly its
// permissions, nor the key itself (422 42205); the owner's secret keeps
// working; switching it on (a no-op) stays allowed, and so does switching
// the managed publishable key off (its owner's choice).
func TestUpdateRootCredentialStaysOn(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		root, err := getKey(t, admin, m.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		peer := customKey(t, env, m, "peer", root.Permissions, nil)
		for name, c := range map[string]string{"a peer": peer.Key, "the root itself": m.Secret} {
			_, err := updateKey(t, env.Client(c), m.SecretID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)})
			ae := requireAPIError(t, err, 422, client.CodeManagedKeyFixed)
			if !strings.Contains(ae.Message, "root credential") {
				t.Fatalf("%s: message %q", name, ae.Message)
			}
			// Also alongside a change that would be allowed alone: nothing is written.
			_, err = updateKey(t, env.Client(c), m.SecretID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive), Metadata: &client.Metadata{"x": "y"}})
			wantAPIError(t, err, 422, client.CodeManagedKeyFixed)
		}
		v, err := getKey(t, admin, m.SecretID)
		if err != nil || v.Status != client.StatusActive || len(v.Metadata) != 0 {
			t.Fatalf("the owner's secret after the refusals: %+v %v", v, err)
		}
		if v, err := updateKey(t, env.Client(peer.Key), m.SecretID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)}); err != nil || v.Status != client.StatusActive {
			t.Fatalf("enabling the root (a no-op): %+v %v", v, err)
		}
		if v, err := updateKey(t, admin, m.PublishableID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil || v.Status != client.StatusInactive {
			t.Fatalf("disabling the managed publishable key: %+v %v", v, err)
		}
		// Rotating the root stays allowed to a caller with power over it:
		// the new secret goes to that caller.
		rotated, err := env.Client(peer.Key).RegenerateAPIKey(ctx, m.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := getKey(t, env.Client(rotated.Key), m.SecretID); err != nil {
			t.Fatalf("the rotated root: %v", err)
		}
	})
}

// Update answers, by a caller that may not read keys, only what the caller
// may learn (issue 17): its view of the key has no metadata it did not set
// and no last use; a 40302 does not list the key's permissions; and a
// deleted key it has no power over is refused (40302), not reported deleted.
func TestUpdateRevealsOnlyWhatTheCallerMayRead(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		updOnly := customKey(t, env, m, "updater", client.Permissions{"account:api:key": {"update"}}, nil)
		updRead := customKey(t, env, m, "reader", client.Permissions{"account:api:key": {"update", "read"}}, nil)
		target := customKey(t, env, m, "target", client.Permissions{"account:api:key": {"update"}}, nil)
		meta := client.Metadata{"team": "payments"}
		if _, err := updateKey(t, admin, target.ID, client.UpdateAPIKeyRequest{Metadata: &meta}); err != nil {
			t.Fatal(err)
		}
		_, _ = getKey(t, env.Client(target.Key), target.ID) // a use: 403, but authenticated
		full, err := getKey(t, env.Client(updRead.Key), target.ID)
		if err != nil || full.LastUsedAt == nil || full.LastUsedIP == nil || full.Metadata["team"] != "payments" {
			t.Fatalf("a reader's view: %+v %v", full, err)
		}

		// (a) GET is refused; a PATCH that changes nothing shows nothing more.
		_, err = getKey(t, env.Client(updOnly.Key), target.ID)
		wantAPIError(t, err, 403, client.CodePermissionDenied)
		v, err := updateKey(t, env.Client(updOnly.Key), target.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)})
		if err != nil || v.Metadata == nil || len(v.Metadata) != 0 || v.LastUsedAt != nil || v.LastUsedIP != nil {
			t.Fatalf("a non-reader's view of a no-op update: %+v %v", v, err)
		}
		if v.ID != target.ID || v.Name != "target" || v.Status != client.StatusActive || v.KeyHint == nil || len(v.Permissions) != 1 {
			t.Fatalf("the view lost what the write confirms: %+v", v)
		}
		set := client.Metadata{"team": "risk"}
		v, err = updateKey(t, env.Client(updOnly.Key), target.ID, client.UpdateAPIKeyRequest{Metadata: &set})
		if err != nil || v.Metadata["team"] != "risk" || len(v.Metadata) != 1 || v.LastUsedAt != nil {
			t.Fatalf("a non-reader's view of its metadata write: %+v %v", v, err)
		}
		v, err = updateKey(t, env.Client(updRead.Key), target.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)})
		if err != nil || v.Metadata["team"] != "risk" || v.LastUsedAt == nil {
			t.Fatalf("a reader's view of a no-op update: %+v %v", v, err)
		}

		// (c) 40302 lists the key's permissions to a reader only.
		strong := customKey(t, env, m, "strong", client.Permissions{"refund": {"create"}}, nil)
		_, err = updateKey(t, env.Client(updOnly.Key), strong.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)})
		if ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation); ae.Details["missing"] != nil {
			t.Fatalf("a non-reader is told the key's permissions: %v", ae.Details)
		}
		_, err = updateKey(t, env.Client(updRead.Key), strong.ID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusActive)})
		if ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation); len(toStrings(ae.Details["missing"])) == 0 {
			t.Fatalf("a reader is not told what it lacks: %v", ae.Details)
		}

		// (d) a deleted key the caller has no power over: 40302, not 40903.
		if _, err := deleteKey(t, admin, strong.ID); err != nil {
			t.Fatal(err)
		}
		_, err = updateKey(t, env.Client(updOnly.Key), strong.ID, client.UpdateAPIKeyRequest{Name: ptr("x")})
		wantAPIError(t, err, 403, client.CodePrivilegeEscalation)
		_, err = updateKey(t, admin, strong.ID, client.UpdateAPIKeyRequest{Name: ptr("x")})
		wantAPIError(t, err, 409, client.CodeKeyDeleted)
	})
}
