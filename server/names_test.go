package server_test

import (
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// Issue 17 (class 7): names that people cannot tell from a live key's name
// are duplicates (40900), on create and on rename, on both stores; deleting
// the key frees every such name.
func TestNamesPeopleCannotTellApart(t *testing.T) {
	lookalikes := []string{
		"Managed s\u0435cret key",  // Cyrillic е
		"Managed  secret key",      // two spaces
		"Managed secret key\u0301", // a trailing combining mark (NFC: "keý")
		"Managed secret key\u3164", // Hangul filler: a letter that renders blank
	}
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		for _, name := range lookalikes {
			_, err := admin.CreateAPIKey(ctx, acct, newKeyReq(name, client.Permissions{}))
			wantAPIError(t, err, 409, client.CodeDuplicateName)
		}
		// Renamed onto a look-alike of another live key's name.
		k := customKey(t, env, m, "Renamed later", client.Permissions{}, nil)
		for _, name := range append(lookalikes, apikeys.ManagedSecretName) {
			_, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr(name)})
			wantAPIError(t, err, 409, client.CodeDuplicateName)
		}
		// Renaming within its own look-alikes is no conflict, and the name is kept as sent.
		if v, err := updateKey(t, admin, k.ID, client.UpdateAPIKeyRequest{Name: ptr("Renamed  later")}); err != nil || v.Name != "Renamed  later" {
			t.Fatalf("rename to its own look-alike: %+v %v", v, err)
		}
		// A deleted key's name, and its look-alikes, are free again.
		other := customKey(t, env, m, "Payments backend", client.Permissions{}, nil)
		_, err := admin.CreateAPIKey(ctx, acct, newKeyReq("Paym\u0435nts backend", client.Permissions{}))
		wantAPIError(t, err, 409, client.CodeDuplicateName)
		if _, err := deleteKey(t, admin, other.ID); err != nil {
			t.Fatal(err)
		}
		customKey(t, env, m, "Paym\u0435nts backend", client.Permissions{}, nil)
		// Nothing but a combining mark shows nothing to tell it by.
		_, err = admin.CreateAPIKey(ctx, acct, newKeyReq("\u0301", client.Permissions{}))
		wantAPIError(t, err, 400, client.CodeValidationFailed)
	})
}
