package sqlite

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// TestCloneKey: a clone is equal to its key, nil and empty alike, and shares
// nothing with it that a caller could change.
func TestCloneKey(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	ip := "192.0.2.1"
	full := &apikey.Key{ID: "key_1", AccountID: "acct_1", Name: "n", NameKey: "n", Type: apikey.TypeSecret,
		SecretHash: []byte{1, 2, 3}, PrevSecretHash: []byte{4, 5}, PrevSecretExpiresAt: &now, KeyHint: "h",
		Permissions: map[string][]string{"a": {"read", "write"}, "b": {}, "c": nil}, Metadata: map[string]string{"k": "v"},
		Status: apikey.StatusActive, Managed: true, LastUsedAt: &now, LastUsedIP: &ip, ExpiresAt: &now,
		CreatedAt: now, UpdatedAt: now, CreatedBy: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req"},
		AllowedNetworks: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, RateLimit: &apikey.RateLimit{Limit: 3, Window: time.Second},
		Credits: &apikey.Credits{Remaining: 5, Refill: &apikey.CreditRefill{Amount: 9}, RefilledAt: now}}
	for _, k := range []*apikey.Key{full, {ID: "key_2"}, {ID: "key_3", SecretHash: []byte{}, Permissions: map[string][]string{},
		Metadata: map[string]string{}}} {
		c := cloneKey(k)
		if !reflect.DeepEqual(c, k) {
			t.Fatalf("clone %+v, want %+v", c, k)
		}
	}
	c := cloneKey(full)
	c.SecretHash[0], c.PrevSecretHash[0] = 9, 9
	c.Permissions["a"][0] = "x"
	c.Permissions["a"] = append(c.Permissions["a"], "y")
	*c.ExpiresAt, *c.LastUsedAt, *c.PrevSecretExpiresAt, *c.LastUsedIP = time.Time{}, time.Time{}, time.Time{}, "x"
	c.Metadata["k"] = "x"
	c.AllowedNetworks[0] = netip.Prefix{}
	c.RateLimit.Limit, c.Credits.Remaining, c.Credits.Refill.Amount = 4, 6, 10
	d := cloneKey(full)
	if !reflect.DeepEqual(d, full) || full.RateLimit.Limit != 3 || full.Credits.Remaining != 5 || full.Credits.Refill.Amount != 9 ||
		!full.AllowedNetworks[0].IsValid() || full.SecretHash[0] != 1 || full.PrevSecretHash[0] != 4 || full.Permissions["a"][0] != "read" ||
		len(full.Permissions["a"]) != 2 || !full.ExpiresAt.Equal(now) || ip != "192.0.2.1" || full.Metadata["k"] != "v" {
		t.Fatalf("changing a clone changed its key: %+v", full)
	}
	c2 := cloneKey(full)
	c2.Permissions["b"] = append(c2.Permissions["b"], "z") // capped: copies, never writes into another slice
	if got := cloneKey(full).Permissions; len(got["b"]) != 0 || !reflect.DeepEqual(got, full.Permissions) {
		t.Fatalf("append to a clone's actions changed another clone: %v", got)
	}
}

// TestReadKeys: readKeys answers as a map does, whatever the order of sets,
// drops and clears, below and past its two places.
func TestReadKeys(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6)) //nolint:gosec // reproducible test values, not a secret
	var r readKeys
	want := map[string]*apikey.Key{}
	ids := []string{"a", "b", "c", "d", "e"}
	for i := range 5000 {
		id := ids[rng.IntN(len(ids))]
		switch rng.IntN(10) {
		case 0:
			r.clear()
			clear(want)
		case 1, 2, 3:
			r.drop(id)
			delete(want, id)
		default:
			k := &apikey.Key{ID: id, Name: fmt.Sprint(i)}
			r.set(k)
			want[id] = k
		}
		for _, id := range ids {
			if got := r.get(id); got != want[id] {
				t.Fatalf("step %d: get(%s) = %v, want %v", i, id, got, want[id])
			}
		}
	}
}
