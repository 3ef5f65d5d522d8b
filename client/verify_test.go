package client_test

import (
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// VerifyKey end to end: a verdict for every key, errors for the request.
func TestVerifyKey(t *testing.T) {
	env, m, c := lifecycleEnv(t, "acct_verify")
	reader := create(t, c, "acct_verify", "reader", client.Permissions{"payment": {"read"}})

	v, err := c.VerifyKey(ctx, reader.Key, client.RequirePermissions("payment:read"))
	if err != nil || !v.Valid || v.Code != client.VerifyValid || !v.Found() || v.ID != reader.ID || v.AccountID != "acct_verify" ||
		v.Mode != client.VerifiedTest || v.Type != client.TypeSecret || v.Managed || v.ExpiresAt != nil || v.InGracePeriod {
		t.Fatalf("valid: %+v %v", v, err)
	}
	v, err = c.VerifyKey(ctx, m.Publishable, client.RequirePermissions("payment:read", "payment:create", "account:api:key:read"))
	if err != nil || v.Valid || v.Code != client.VerifyInsufficientPermissions || v.Type != client.TypePublishable ||
		len(v.MissingPermissions) != 2 || v.MissingPermissions[0] != "account:api:key:read" || v.MissingPermissions[1] != "payment:create" {
		t.Fatalf("insufficient: %+v %v", v, err)
	}
	other := env.Bootstrap("acct_verify_other")
	for _, key := range []string{other[apikey.Sandbox].Secret, "sk_test_unknown", m.Secret[:len(m.Secret)-1]} {
		v, err = c.VerifyKey(ctx, key)
		if err != nil || v.Valid || v.Code != client.VerifyNotFound || v.Found() || v.Permissions != nil {
			t.Fatalf("not found: %+v %v", v, err)
		}
	}
	if _, err := c.UpdateAPIKey(ctx, reader.ID, client.Disable()); err != nil {
		t.Fatal(err)
	}
	if v, err = c.VerifyKey(ctx, reader.Key); err != nil || v.Code != client.VerifyDisabled || v.ID != reader.ID {
		t.Fatalf("disabled: %+v %v", v, err)
	}
	if _, err := c.DeleteAPIKey(ctx, reader.ID); err != nil {
		t.Fatal(err)
	}
	if v, err = c.VerifyKey(ctx, reader.Key); err != nil || v.Code != client.VerifyRevoked {
		t.Fatalf("revoked: %+v %v", v, err)
	}
	rotated, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if v, err = c.VerifyKey(ctx, m.Publishable); err != nil || !v.Valid || !v.InGracePeriod || v.GracePeriodEndsAt == nil ||
		!v.GracePeriodEndsAt.Equal(*rotated.PreviousKeyExpiresAt) {
		t.Fatalf("in grace: %+v %v", v, err)
	}

	// Errors are about the request, never the key.
	noVerify := create(t, c, "acct_verify", "no verify", client.Permissions{"account:api:key": {"read"}})
	_, err = env.Client(noVerify.Key).VerifyKey(ctx, m.Secret)
	wantAPIError(t, "caller without account:api:key:verify", err, client.ErrForbidden, client.CodePermissionDenied)
	_, err = c.VerifyKey(ctx, m.Secret, client.RequirePermissions("payment:explode"))
	wantAPIError(t, "unknown permission", err, client.ErrUnprocessable, client.CodeUnknownPermission)
	_, err = env.Client("sk_test_nope").VerifyKey(ctx, m.Secret)
	wantAPIError(t, "unknown caller", err, client.ErrUnauthorized, client.CodeInvalidCredentials)
}
