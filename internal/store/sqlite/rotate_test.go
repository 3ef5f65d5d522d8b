package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestNarrowUpdateIsUpdate: UpdateKey leaves the same row whether it may run
// rotateKeySQL or always runs updateKeySQL, for random keys and random
// changes (a rotation alone, or with another field changed; one update a
// unit or two), and it does run rotateKeySQL for a rotation alone.
func TestNarrowUpdateIsUpdate(t *testing.T) {
	ctx := context.Background()
	defer func(was bool) { narrowUpdates = was }(narrowUpdates)
	open := func() *Repo {
		st, err := Open(ctx, t.TempDir(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() }) // only compared
		r := st.repos[apikey.Sandbox]
		if err := store.CreateAccount(ctx, r, "acct_narrow", time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
		return r
	}
	narrow, full := open(), open()
	seed0 := uint64(time.Now().UnixNano()) //nolint:gosec // any bits will do for a seed
	defer func() {
		if t.Failed() {
			t.Logf("seed %d", seed0)
		}
	}()
	rng := rand.New(rand.NewPCG(19, seed0)) //nolint:gosec // test values, not a secret
	base := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	at := func() *time.Time {
		if rng.IntN(3) == 0 {
			return nil
		}
		t := base.Add(time.Duration(rng.IntN(1e6)) * time.Second)
		return &t
	}
	hash := func() []byte {
		b := make([]byte, 32)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	names := []string{"a", "b", "Alpha", "alpha", "a  b", "a b", "ünï"}
	randKey := func(i int) *apikey.Key {
		k := &apikey.Key{ID: fmt.Sprintf("key_%d", i), AccountID: "acct_narrow", Name: fmt.Sprintf("%s %d", names[rng.IntN(len(names))], i),
			Type: apikey.TypeSecret, SecretHash: hash(), Status: apikey.StatusActive, Managed: rng.IntN(2) == 0,
			CreatedAt: base, UpdatedAt: base, ExpiresAt: at(), KeyHint: "sk_…" + fmt.Sprint(i)}
		switch rng.IntN(4) {
		case 0:
			k.Permissions = map[string][]string{"payment": {"read"}}
		case 1:
			k.Permissions = map[string][]string{"payment": {}} // [], not null
		case 2:
			k.Permissions = map[string][]string{"payment": nil}
		}
		if rng.IntN(2) == 0 {
			k.Metadata = map[string]string{"team": fmt.Sprint(rng.IntN(3))}
		}
		if rng.IntN(2) == 0 {
			k.PrevSecretHash, k.PrevSecretExpiresAt = hash(), at()
		}
		if rng.IntN(3) == 0 {
			k.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
		}
		if rng.IntN(3) == 0 {
			k.RateLimit = &apikey.RateLimit{Limit: 1 + rng.IntN(5), Window: time.Minute}
		}
		if rng.IntN(3) == 0 {
			k.Credits = &apikey.Credits{Remaining: int64(rng.IntN(5)), RefilledAt: base}
		}
		return k
	}
	// change changes one field other than the secret's.
	change := func(k *apikey.Key) {
		switch rng.IntN(11) {
		case 0:
			k.Name += "x"
		case 1:
			k.Permissions = map[string][]string{"refund": {"read"}}
		case 2:
			k.Metadata = map[string]string{"team": "other"}
		case 3:
			k.Status = apikey.StatusInactive
		case 4:
			k.Deleted = !k.Deleted
		case 5:
			k.ExpiresAt = at()
			if k.ExpiresAt == nil {
				k.ExpiresAt = &base
			}
		case 6:
			k.AllowedNetworks = []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}
		case 7:
			k.RateLimit = &apikey.RateLimit{Limit: 99, Window: time.Hour}
		case 8:
			if k.Credits == nil {
				k.Credits = &apikey.Credits{RefilledAt: base}
			}
			k.Credits.Remaining += 7
		case 10: // null and [] are not the same text
			for r, acts := range k.Permissions {
				if acts == nil {
					k.Permissions[r] = []string{}
				} else if len(acts) == 0 {
					k.Permissions[r] = nil
				}
			}
		case 9:
			k.Permissions = nil // written as {}: the same as an empty map
			if len(k.Metadata) == 0 {
				k.Metadata = map[string]string{"m": "1"}
			} else {
				k.Metadata = nil
			}
		}
	}
	const n = 300
	rotationsOnly := 0
	for i := range n {
		k := randKey(i)
		for _, r := range []*Repo{narrow, full} {
			c := cloneKey(k)
			if err := store.InsertKey(ctx, r, c); err != nil {
				t.Fatal(err)
			}
		}
		for round := range 2 { // the key from the statement, then from the cache
			perUnit := 1 + rng.IntN(2)
			plan := make([]bool, perUnit) // whether each update changes more than the secret
			secrets := make([][3]any, perUnit)
			for u := range plan {
				plan[u] = rng.IntN(2) == 0
				secrets[u] = [3]any{hash(), at(), base.Add(time.Duration(round*10+u+1) * time.Hour)}
				if !plan[u] {
					rotationsOnly++
				}
			}
			seed := rng.Uint64()
			for _, r := range []*Repo{narrow, full} {
				narrowUpdates = r == narrow
				crng := rand.New(rand.NewPCG(seed, 0)) //nolint:gosec // the same changes in both: test values, not a secret
				saved := rng
				rng = crng
				err := r.InTx(ctx, func(tx store.Tx) error {
					for u, more := range plan {
						got, err := tx.Key(ctx, k.ID)
						if err != nil {
							return err
						}
						got.PrevSecretHash, got.SecretHash = got.SecretHash, secrets[u][0].([]byte)
						got.PrevSecretExpiresAt, got.UpdatedAt = secrets[u][1].(*time.Time), secrets[u][2].(time.Time)
						got.KeyHint = fmt.Sprintf("sk_…%d.%d.%d", i, round, u)
						if more {
							change(got)
						}
						if err := tx.UpdateKey(ctx, got); err != nil {
							return err
						}
					}
					return nil
				})
				rng = saved
				if err != nil {
					t.Fatalf("key %d round %d: %v", i, round, err)
				}
			}
			if a, b := rawRow(ctx, t, narrow, k.ID), rawRow(ctx, t, full, k.ID); !reflect.DeepEqual(a, b) {
				t.Fatalf("key %d round %d (%v): the narrow update left\n%v\nthe full one\n%v", i, round, plan, a, b)
			}
		}
	}
	// At least: a change may leave a field as it was.
	if got := narrow.w.rotations; got < int64(rotationsOnly) {
		t.Errorf("rotateKeySQL ran %d times for %d rotations alone", got, rotationsOnly)
	}
	if full.w.rotations != 0 {
		t.Errorf("rotateKeySQL ran %d times while turned off", full.w.rotations)
	}
}

// rawRow is every column of key id's row as the file holds it.
func rawRow(ctx context.Context, t *testing.T, r *Repo, id string) []any {
	t.Helper()
	rows, err := r.rdb.QueryContext(ctx, `SELECT * FROM api_keys WHERE id = ?`, id)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	if !rows.Next() {
		t.Fatalf("no row %s: %v", id, rows.Err())
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	if err := rows.Scan(ptrs...); err != nil {
		t.Fatal(err)
	}
	out := make([]any, 0, 2*len(cols))
	for i, c := range cols {
		out = append(out, c, vals[i])
	}
	return out
}
