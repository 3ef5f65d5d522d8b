package storetest

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

// SeedKey is a key that a migration test writes with SQL into a database at
// schema version 3 (before hints, lists and audit), in every mode, on
// account SeedAccount.
type SeedKey struct {
	ID, Type    string
	Managed     bool
	Permissions string // JSON
}

const SeedAccount = "acct_old"

// catalogBeforeAudit is what managed secret keys held before account:audit.
const catalogBeforeAudit = `{"account": ["read", "update"], "account:api:key": ["create", "delete", "read", "update"],
	"customer": ["create", "delete", "read", "update"], "payment": ["cancel", "create", "read", "update"],
	"refund": ["create", "read"], "webhook": ["create", "delete", "read", "update"]}`

// Pre00004Keys are the keys a migration test seeds at version 3.
var Pre00004Keys = []SeedKey{
	{ID: "key_managed_secret", Type: apikey.TypeSecret, Managed: true, Permissions: catalogBeforeAudit},
	{ID: "key_managed_pub", Type: apikey.TypePublishable, Managed: true, Permissions: `{"payment": ["create"]}`},
	{ID: "key_custom", Type: apikey.TypeSecret, Permissions: `{"payment": ["read"]}`},
	{ID: "key_custom_empty", Type: apikey.TypeSecret, Permissions: `{}`},
}

func seedPermissions(t *testing.T, k SeedKey) map[string][]string {
	t.Helper()
	var m map[string][]string
	if err := json.Unmarshal([]byte(k.Permissions), &m); err != nil {
		t.Fatalf("seed %s: %v", k.ID, err)
	}
	return m
}

// CheckMigrated00004 checks a store opened on the seeded version-3 databases
// (migrated by Open, 00006 included): managed secret keys gained
// account:audit [read] (and account:api:key verify), other
// keys kept their permissions, no key has a hint, the account's audit chain
// is empty and takes appends, and lists work on the old keys.
func CheckMigrated00004(t *testing.T, s store.Store) {
	t.Helper()
	ctx := t.Context()
	for _, m := range apikey.Modes {
		r := s.Repo(m)
		for _, sk := range Pre00004Keys {
			k, err := r.GetKey(ctx, sk.ID)
			if err != nil {
				t.Fatalf("%s: GetKey(%s): %v", m, sk.ID, err)
			}
			want := seedPermissions(t, sk)
			if sk.Managed && sk.Type == apikey.TypeSecret {
				want["account:audit"] = []string{"read"}
				want["account:api:key"] = append(want["account:api:key"], "verify") // and 00006 ran too
			}
			if !reflect.DeepEqual(k.Permissions, want) {
				t.Errorf("%s: %s permissions after 00004 = %v, want %v", m, sk.ID, k.Permissions, want)
			}
			if k.KeyHint != "" {
				t.Errorf("%s: %s KeyHint = %q, want \"\" (NULL)", m, sk.ID, k.KeyHint)
			}
		}
		ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: SeedAccount, Now: time.Now(), Limit: 100})
		if err != nil || len(ks) != len(Pre00004Keys) {
			t.Errorf("%s: ListKeys = %d keys, %v; want %d", m, len(ks), err, len(Pre00004Keys))
		}
		h, ok := head(t, r, SeedAccount)
		if !ok || h.Seq != 0 || h.Hash != "" {
			t.Errorf("%s: head of the old account = %+v, %v; want an empty chain", m, h, ok)
		}
		e := newEvent("evt_after_00004", SeedAccount, "key_custom", audit.Update, 0, map[string]any{"name": "x"})
		mustAppend(t, r, e)
		if e.Seq != 1 || e.PrevHash != "" {
			t.Errorf("%s: first event of the old account: seq %d prev %q", m, e.Seq, e.PrevHash)
		}
		if err := verify(t, r, m, SeedAccount); err != nil {
			t.Errorf("%s: Verify: %v", m, err)
		}
	}
}

// CheckPermissionsDown00004 checks the permissions after migrating down to
// version 3 (the JSON each seeded key holds, by id): as they were seeded.
func CheckPermissionsDown00004(t *testing.T, got map[string]string) {
	t.Helper()
	for _, sk := range Pre00004Keys {
		var m map[string][]string
		if err := json.Unmarshal([]byte(got[sk.ID]), &m); err != nil {
			t.Fatalf("%s permissions after down: %q: %v", sk.ID, got[sk.ID], err)
		}
		if want := seedPermissions(t, sk); !reflect.DeepEqual(m, want) {
			t.Errorf("%s permissions after down = %v, want %v", sk.ID, m, want)
		}
	}
}
