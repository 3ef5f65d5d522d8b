package server_test

import (
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
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
			meta := oapi.Metadata{"team": "payments"}
			v, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Name: ptr("after"), Metadata: &meta, ExpiresAt: &in1})
			if err != nil || v.Name != "after" || v.Metadata["team"] != "payments" || !v.ExpiresAt.Equal(in1) {
				t.Fatalf("%+v %v", v, err)
			}
			customKey(t, env, m, "before", client.Permissions{}, nil) // the old name is free
		})
		t.Run("200 disable refuses the secret at once; enable restores it", func(t *testing.T) {
			k := customKey(t, env, m, "switch", client.Permissions{"account:api:key": {"read"}}, nil)
			v, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Status: ptr(oapi.UpdateInactive)})
			if err != nil || v.Status != oapi.KeyViewInactive {
				t.Fatalf("%+v %v", v, err)
			}
			refusedNow(t, env, k.Key)
			if _, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Status: ptr(oapi.UpdateActive)}); err != nil {
				t.Fatal(err)
			}
			if _, err := getKey(t, env.Client(k.Key), k.ID); err != nil {
				t.Fatalf("re-enabled key: %v", err)
			}
		})
		t.Run("400 empty body, unknown field, bad name", func(t *testing.T) {
			k := customKey(t, env, m, "valid", client.Permissions{}, nil)
			_, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{})
			wantAPIError(t, err, 400, oapi.CodeValidationFailed)
			_, err = updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Name: ptr("zero\u200bwidth")})
			wantAPIError(t, err, 400, oapi.CodeValidationFailed)
		})
		t.Run("401 no token", func(t *testing.T) {
			_, err := updateKey(t, env.Client("Bearer"), m.PublishableID, oapi.UpdateAPIKeyRequest{Name: ptr("x")})
			wantAPIError(t, err, 401, oapi.CodeInvalidCredentials)
		})
		t.Run("403 power and life", func(t *testing.T) {
			weak := customKey(t, env, m, "weak updater", client.Permissions{"account:api:key": {"update"}}, nil)
			strong := customKey(t, env, m, "strong target", client.Permissions{"refund": {"create"}}, nil)
			_, err := updateKey(t, env.Client(weak.Key), strong.ID, oapi.UpdateAPIKeyRequest{Status: ptr(oapi.UpdateActive)})
			wantAPIError(t, err, 403, oapi.CodePrivilegeEscalation)
			// Switching the managed secret key off is editing the most powerful key.
			_, err = updateKey(t, env.Client(weak.Key), m.SecretID, oapi.UpdateAPIKeyRequest{Status: ptr(oapi.UpdateInactive)})
			wantAPIError(t, err, 403, oapi.CodePrivilegeEscalation)
			hour := time.Now().Add(time.Hour)
			short := customKey(t, env, m, "short updater", client.Permissions{"account:api:key": {"update"}}, &hour)
			forever := customKey(t, env, m, "forever target", client.Permissions{}, nil)
			_, err = updateKey(t, env.Client(short.Key), forever.ID, oapi.UpdateAPIKeyRequest{Name: ptr("renamed")})
			wantAPIError(t, err, 403, oapi.CodeLifetimeEscalation)
		})
		t.Run("404 unknown or another account's key", func(t *testing.T) {
			_, err := updateKey(t, admin, "key_doesnotexist0000", oapi.UpdateAPIKeyRequest{Name: ptr("x")})
			wantAPIError(t, err, 404, oapi.CodeKeyNotFound)
		})
		t.Run("409 taken name, deleted key", func(t *testing.T) {
			customKey(t, env, m, "taken", client.Permissions{}, nil)
			k := customKey(t, env, m, "mover", client.Permissions{}, nil)
			_, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Name: ptr("taken")})
			wantAPIError(t, err, 409, oapi.CodeDuplicateName)
			if _, err := deleteKey(t, admin, k.ID); err != nil {
				t.Fatal(err)
			}
			_, err = updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{Name: ptr("anything")})
			wantAPIError(t, err, 409, oapi.CodeKeyDeleted)
		})
		t.Run("422 managed name fixed, later or past expiry", func(t *testing.T) {
			_, err := updateKey(t, admin, m.PublishableID, oapi.UpdateAPIKeyRequest{Name: ptr("mine now")})
			wantAPIError(t, err, 422, oapi.CodeManagedKeyFixed)
			day := time.Now().Add(24 * time.Hour)
			k := customKey(t, env, m, "expiring", client.Permissions{}, &day)
			later := day.Add(time.Hour)
			_, err = updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{ExpiresAt: &later})
			wantAPIError(t, err, 422, oapi.CodeExpiryExtended)
			past := time.Now().Add(-time.Hour)
			_, err = updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{ExpiresAt: &past})
			wantAPIError(t, err, 422, oapi.CodeInvalidExpiry)
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
		v, err := updateKey(t, admin, k.ID, oapi.UpdateAPIKeyRequest{ExpiresAt: &exp})
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
		_, err = updateKey(t, admin, b.ID, oapi.UpdateAPIKeyRequest{Name: ptr("taken")})
		wantAPIError(t, err, 409, oapi.CodeDuplicateName)
	})
}
