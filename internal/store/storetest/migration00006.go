package storetest

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// catalogBeforeVerify is what managed secret keys held at schema version 5,
// before account:api:key:verify (issue 11).
const catalogBeforeVerify = `{"account": ["read", "update"], "account:api:key": ["create", "delete", "read", "update"],
	"account:audit": ["read"], "customer": ["create", "delete", "read", "update"],
	"payment": ["cancel", "create", "read", "update"], "refund": ["create", "read"],
	"webhook": ["create", "delete", "read", "update"]}`

// Pre00006Keys are the keys a migration test seeds at version 5. The last
// one already holds verify (as if granted by hand): 00006 must not add it
// twice. Down leaves it without (as 00004's Down does for account:audit).
var Pre00006Keys = []SeedKey{
	{ID: "key_managed_secret", Type: apikey.TypeSecret, Managed: true, Permissions: catalogBeforeVerify},
	{ID: "key_managed_pub", Type: apikey.TypePublishable, Managed: true, Permissions: `{"payment": ["read"]}`},
	{ID: "key_custom", Type: apikey.TypeSecret, Permissions: `{"account:api:key": ["read"], "payment": ["read"]}`},
	{ID: "key_custom_empty", Type: apikey.TypeSecret, Permissions: `{}`},
	{ID: "key_managed_has_verify", Type: apikey.TypeSecret, Managed: true, Permissions: `{"account:api:key": ["verify", "read"]}`},
}

// migrated00006 is what a seeded key holds after 00006.
func migrated00006(t *testing.T, sk SeedKey) map[string][]string {
	want := seedPermissions(t, sk)
	if sk.Managed && sk.Type == apikey.TypeSecret && sk.ID != "key_managed_has_verify" {
		want["account:api:key"] = append(want["account:api:key"], "verify")
	}
	return want
}

// CheckMigrated00006 checks a store opened on the seeded version-5 databases
// (migrated by Open): managed secret keys gained account:api:key verify,
// appended once; publishable and custom keys kept their permissions.
func CheckMigrated00006(t *testing.T, s store.Store) {
	t.Helper()
	for _, m := range apikey.Modes {
		for _, sk := range Pre00006Keys {
			k, err := s.Repo(m).GetKey(t.Context(), sk.ID)
			if err != nil {
				t.Fatalf("%s: GetKey(%s): %v", m, sk.ID, err)
			}
			if want := migrated00006(t, sk); !reflect.DeepEqual(k.Permissions, want) {
				t.Errorf("%s: %s permissions after 00006 = %v, want %v", m, sk.ID, k.Permissions, want)
			}
		}
	}
}

// CheckPermissionsDown00006 checks the permissions (JSON by key id) after
// migrating down to version 5: as seeded, except that a managed secret key
// that held verify before 00006 no longer does.
func CheckPermissionsDown00006(t *testing.T, got map[string]string) {
	t.Helper()
	for _, sk := range Pre00006Keys {
		var m map[string][]string
		if err := json.Unmarshal([]byte(got[sk.ID]), &m); err != nil {
			t.Fatalf("%s permissions after down: %q: %v", sk.ID, got[sk.ID], err)
		}
		want := seedPermissions(t, sk)
		if sk.ID == "key_managed_has_verify" {
			want["account:api:key"] = []string{"read"}
		}
		if !reflect.DeepEqual(m, want) {
			t.Errorf("%s permissions after down = %v, want %v", sk.ID, m, want)
		}
	}
}
