package storetest

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// testKeyHint: a hint is written by InsertKey and UpdateKey and read by every
// read; "" is stored as NULL (keys from before hints were kept) and NULL
// reads as "".
func testKeyHint(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	isNull := func(id string) bool {
		t.Helper()
		return mustQueryInt(t, s, apikey.Live, `SELECT count(*) FROM api_keys WHERE id = ? AND key_hint IS NULL`, id) == 1
	}
	hinted := newKey("key_1", "acct_1", "hinted")
	hinted.KeyHint = "sk_test_…3kP9"
	hinted.Managed = true
	mustInsert(t, r, hinted)
	bare := newKey("key_2", "acct_1", "bare")
	mustInsert(t, r, bare)
	if isNull("key_1") || !isNull("key_2") {
		t.Errorf("key_hint IS NULL: hinted %v, bare %v; want false, true", isNull("key_1"), isNull("key_2"))
	}
	read := func(what string, want *apikey.Key) {
		t.Helper()
		k, err := r.GetKey(ctx, want.ID)
		if err != nil {
			t.Fatalf("%s: GetKey: %v", what, err)
		}
		checkKey(t, what+": GetKey", k, want)
		k, err = r.KeyBySecretHash(ctx, want.SecretHash)
		if err != nil {
			t.Fatalf("%s: KeyBySecretHash: %v", what, err)
		}
		checkKey(t, what+": KeyBySecretHash", k, want)
		var in *apikey.Key
		err = r.InTx(ctx, func(tx store.Tx) error { in, err = tx.Key(ctx, want.ID); return err })
		if err != nil {
			t.Fatalf("%s: Tx.Key: %v", what, err)
		}
		checkKey(t, what+": Tx.Key", in, want)
		ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_1", Now: at(0), Limit: 10})
		if err != nil {
			t.Fatalf("%s: ListKeys: %v", what, err)
		}
		for _, k := range ks {
			if k.ID == want.ID {
				checkKey(t, what+": ListKeys", k, want)
			}
		}
	}
	read("inserted with a hint", hinted)
	read("inserted without", bare)
	if ks, err := r.ListManagedKeys(ctx, "acct_1"); err != nil || len(ks) != 1 || ks[0].KeyHint != hinted.KeyHint {
		t.Errorf("ListManagedKeys = %v, %v; want key_1 with its hint", ks, err)
	}

	// Regenerate writes a new hint; UpdateKey with "" clears it to NULL.
	hinted.KeyHint = "sk_test_…Wx9Q"
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.KeyHint = hinted.KeyHint })
	read("updated hint", hinted)
	bare.KeyHint = "sk_test_…0000"
	mustUpdate(t, r, "key_2", func(k *apikey.Key) { k.KeyHint = bare.KeyHint })
	read("hint given", bare)
	hinted.KeyHint = ""
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.KeyHint = "" })
	read("hint cleared", hinted)
	if !isNull("key_1") || isNull("key_2") {
		t.Errorf("after updates, key_hint IS NULL: key_1 %v, key_2 %v; want true, false", isNull("key_1"), isNull("key_2"))
	}
	// A key from before hints were kept: NULL in the row.
	mustExec(t, s, apikey.Live, 1, `UPDATE api_keys SET key_hint = NULL WHERE id = ?`, "key_2")
	bare.KeyHint = ""
	read("NULL written behind the store", bare)
}

// listKey is one key of the list tests with what the filters look at.
func listKey(id, account string, created time.Duration, typ string, managed bool, status string, expires *time.Time, deleted bool, by string) *apikey.Key {
	k := newKey(id, account, id)
	k.Type, k.Managed, k.Status, k.ExpiresAt, k.Deleted = typ, managed, status, expires, deleted
	k.CreatedAt, k.UpdatedAt = at(created), at(created)
	k.CreatedBy = apikey.Actor{Kind: apikey.ActorKey, ID: by}
	k.KeyHint = "sk_test_…" + id[len(id)-1:] + "xyz"
	return k
}

// matches is the model of KeyFilter, without paging.
func matches(k *apikey.Key, f store.KeyFilter) bool {
	if k.AccountID != f.AccountID || k.Deleted != f.Deleted {
		return false
	}
	expired := k.ExpiresAt != nil && !k.ExpiresAt.After(f.Now)
	switch f.Status {
	case apikey.StatusActive:
		if k.Status != apikey.StatusActive || expired {
			return false
		}
	case "EXPIRED":
		if k.Status != apikey.StatusActive || !expired {
			return false
		}
	case apikey.StatusInactive:
		if k.Status != apikey.StatusInactive {
			return false
		}
	}
	return (f.Type == "" || k.Type == f.Type) && (f.Managed == nil || k.Managed == *f.Managed) &&
		(f.CreatedBy == "" || k.CreatedBy.ID == f.CreatedBy)
}

// byListOrder orders as ListKeys must: created_at (to the microsecond
// PostgreSQL keeps), then ids bytewise.
func byListOrder(a, b *apikey.Key) int {
	return cmp.Or(a.CreatedAt.Truncate(time.Microsecond).Compare(b.CreatedAt.Truncate(time.Microsecond)), strings.Compare(a.ID, b.ID))
}

func ids(ks []*apikey.Key) []string {
	out := []string{}
	for _, k := range ks {
		out = append(out, k.ID)
	}
	return out
}

func filterString(f store.KeyFilter) string {
	m := "any"
	if f.Managed != nil {
		m = fmt.Sprint(*f.Managed)
	}
	return fmt.Sprintf("status=%q type=%q managed=%s created_by=%q deleted=%v", f.Status, f.Type, m, f.CreatedBy, f.Deleted)
}

// testListKeysFilters checks every combination of the filters against a
// model, over keys that differ in each field, with created_at ties that only
// a bytewise id order breaks alike in both stores ("key_B" < "key_a").
func testListKeysFilters(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_2")
	now := at(time.Hour)
	const (
		sec, pub     = apikey.TypeSecret, apikey.TypePublishable
		act, inact   = apikey.StatusActive, apikey.StatusInactive
		user, plat   = "key_x", "bootstrap"
		second, tie  = time.Second, 2 * time.Second
		later, never = 2 * time.Hour, time.Duration(0)
	)
	exp := func(d time.Duration) *time.Time { return ptr(at(d)) }
	all := []*apikey.Key{
		listKey("key_01", "acct_1", second, sec, false, act, nil, false, user),
		listKey("key_B", "acct_1", tie, pub, true, act, nil, false, plat),
		listKey("key_a", "acct_1", tie, sec, true, act, nil, false, plat),
		listKey("key_b", "acct_1", tie, sec, false, act, exp(later), false, user),          // expires later: ACTIVE
		listKey("key_c", "acct_1", 3*second, sec, false, act, exp(time.Hour), false, user), // expires at now: EXPIRED
		listKey("key_d", "acct_1", 4*second, sec, false, act, exp(30*time.Minute), false, user),
		listKey("key_e", "acct_1", 5*second, sec, false, inact, exp(30*time.Minute), false, user), // INACTIVE, not EXPIRED
		listKey("key_f", "acct_1", never, sec, false, act, nil, true, user),
		listKey("key_g", "acct_1", 6*second, pub, false, inact, nil, true, plat),
		listKey("key_h", "acct_1", -second, sec, false, act, exp(time.Minute), true, user),
		listKey("key_i", "acct_2", tie, sec, true, act, nil, false, plat), // other account
	}
	// Insert in an order unlike the list order.
	for _, i := range []int{6, 2, 10, 0, 9, 4, 1, 8, 3, 7, 5} {
		mustInsert(t, r, all[i])
	}
	want := slices.Clone(all)
	slices.SortFunc(want, byListOrder)

	bools := []*bool{nil, ptr(true), ptr(false)}
	n := 0
	for _, deleted := range []bool{false, true} {
		for _, status := range []string{"", act, "EXPIRED", inact} {
			for _, typ := range []string{"", sec, pub} {
				for _, managed := range bools {
					for _, by := range []string{"", user, plat, "nobody"} {
						f := store.KeyFilter{AccountID: "acct_1", Status: status, Type: typ, Managed: managed,
							CreatedBy: by, Deleted: deleted, Now: now, Limit: 100}
						var exp []*apikey.Key
						for _, k := range want {
							if matches(k, f) {
								exp = append(exp, k)
							}
						}
						got, err := r.ListKeys(ctx, f)
						if err != nil {
							t.Fatalf("ListKeys(%s): %v", filterString(f), err)
						}
						if !slices.Equal(ids(got), ids(exp)) {
							t.Errorf("ListKeys(%s) = %v, want %v", filterString(f), ids(got), ids(exp))
						}
						if len(exp) > 0 {
							n++
						}
						if status == "" && typ == "" && managed == nil && by == "" {
							for i := range min(len(got), len(exp)) {
								checkKey(t, "ListKeys", got[i], exp[i])
							}
						}
					}
				}
			}
		}
	}
	if n < 40 {
		t.Errorf("only %d filter combinations select a key: the data does not exercise the filters", n)
	}
	if got, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_1", Now: now, Limit: 3}); err != nil || len(got) != 3 ||
		!slices.Equal(ids(got), []string{"key_01", "key_B", "key_a"}) {
		t.Errorf("ListKeys(limit 3) = %v, %v; want key_01 key_B key_a", ids(got), err)
	}
	if got, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_missing", Now: now, Limit: 3}); err != nil || len(got) != 0 {
		t.Errorf("ListKeys(missing account) = %v, %v; want none", ids(got), err)
	}
	for _, f := range []store.KeyFilter{
		{AccountID: "acct_1", Now: now, Limit: 0},
		{AccountID: "acct_1", Now: now, Limit: -1},
		{AccountID: "acct_1", Now: now, Limit: 10, Status: "active"},
		{AccountID: "acct_1", Now: now, Limit: 10, Status: "DELETED"},
	} {
		if got, err := r.ListKeys(ctx, f); err == nil {
			t.Errorf("ListKeys(limit %d, status %q) = %v, want an error", f.Limit, f.Status, ids(got))
		}
	}
}

// testListKeysPagination pages through an account's keys two at a time while
// keys are created (before and after the cursor) and deleted between pages:
// every key that existed throughout is visited exactly once, none twice.
func testListKeysPagination(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	now := at(time.Hour)
	// Three keys share a created_at, so page boundaries fall inside a tie.
	created := map[string]time.Duration{
		"key_1": time.Second, "key_2": 2 * time.Second, "key_3": 3 * time.Second,
		"key_4a": 3 * time.Second, "key_4b": 3 * time.Second, "key_5": 5 * time.Second, "key_6": 6 * time.Second,
	}
	for id, d := range created {
		k := newKey(id, "acct_1", id)
		k.CreatedAt = at(d)
		mustInsert(t, r, k)
	}
	page := func(after *store.KeyCursor) []*apikey.Key {
		t.Helper()
		ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_1", Now: now, After: after, Limit: 2})
		if err != nil {
			t.Fatalf("ListKeys: %v", err)
		}
		if len(ks) > 2 {
			t.Fatalf("ListKeys(limit 2) returned %d keys", len(ks))
		}
		return ks
	}
	insert := func(id string, d time.Duration) {
		k := newKey(id, "acct_1", id)
		k.CreatedAt = at(d)
		mustInsert(t, r, k)
	}
	del := func(id string) { mustUpdate(t, r, id, func(k *apikey.Key) { k.Deleted = true }) }

	seen := map[string]int{}
	var order []*apikey.Key
	var cursor *store.KeyCursor
	for n := 1; ; n++ {
		ks := page(cursor)
		for _, k := range ks {
			seen[k.ID]++
			order = append(order, k)
		}
		if len(ks) < 2 {
			break
		}
		last := ks[len(ks)-1]
		cursor = &store.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID}
		switch n {
		case 1: // [key_1 key_2]: one key before the cursor, one in the tie ahead, one at the end
			insert("key_0", 0)
			insert("key_3z", 3*time.Second)
			insert("key_9", 9*time.Second)
		case 2: // [key_3 key_3z]: the cursor's own key goes (the next page starts after it all the same), and a visited one
			del(last.ID)
			del("key_1")
		case 3:
			insert("key_4", 3*time.Second) // in the tie, before the cursor (key_4a < key_4b)
			del("key_5")                   // not yet visited: it may go
		}
		if n > 20 {
			t.Fatal("pagination does not end")
		}
	}
	var got []string
	for _, k := range order {
		got = append(got, k.ID)
	}
	for id, c := range seen {
		if c > 1 {
			t.Errorf("key %s visited %d times (pages %v)", id, c, got)
		}
	}
	for id := range created {
		if id != "key_5" && seen[id] != 1 {
			t.Errorf("key %s skipped (pages %v)", id, got)
		}
	}
	if seen["key_0"] != 0 || seen["key_4"] != 0 {
		t.Errorf("keys created before the cursor were listed (pages %v)", got)
	}
	if seen["key_9"] != 1 {
		t.Errorf("key_9, created after the cursor, visited %d times (pages %v)", seen["key_9"], got)
	}
	if !slices.IsSortedFunc(order, byListOrder) {
		t.Errorf("pages out of order: %v", got)
	}

	// A tie across pages whose ids order differently bytewise and in a
	// linguistic collation (B D a c e, against a B c D e): the cursor
	// compares as the order does.
	mustAccount(t, r, "acct_2")
	tie := []string{"key_B", "key_D", "key_a", "key_c", "key_e"}
	for _, i := range []int{3, 0, 4, 2, 1} {
		k := newKey(tie[i], "acct_2", tie[i])
		k.CreatedAt = at(time.Second)
		mustInsert(t, r, k)
	}
	var tied []string
	cursor = nil
	for range len(tie) {
		ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_2", Now: now, After: cursor, Limit: 2})
		if err != nil {
			t.Fatal(err)
		}
		tied = append(tied, ids(ks)...)
		if len(ks) < 2 {
			break
		}
		cursor = &store.KeyCursor{CreatedAt: ks[1].CreatedAt, ID: ks[1].ID}
	}
	if !slices.Equal(tied, tie) {
		t.Errorf("keys of one created_at by pages = %v, want %v", tied, tie)
	}

	// The deleted keys, by pages too.
	var deleted []string
	cursor = nil
	for {
		ks, err := r.ListKeys(ctx, store.KeyFilter{AccountID: "acct_1", Now: now, After: cursor, Limit: 2, Deleted: true})
		if err != nil {
			t.Fatal(err)
		}
		deleted = append(deleted, ids(ks)...)
		if len(ks) < 2 {
			break
		}
		cursor = &store.KeyCursor{CreatedAt: ks[1].CreatedAt, ID: ks[1].ID}
	}
	if want := []string{"key_1", "key_3z", "key_5"}; !slices.Equal(deleted, want) {
		t.Errorf("deleted keys by pages = %v, want %v", deleted, want)
	}
}
