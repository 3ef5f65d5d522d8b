package sqlite

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sqlite3 "modernc.org/sqlite"

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

// TestRotatedKeysFollowTheBatch: a key a unit rotated (rotateKeySQL) is read
// by the units after it in the batch, and by the next batches, from the key
// cache (rotatedRow) exactly as the statement reads its row; a unit that
// rolls back takes its rotation with it, so the next unit reads the row as
// before it; a batch that fails leaves the key as committed.
func TestRotatedKeysFollowTheBatch(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	r := st.repos[apikey.Sandbox]
	if err := store.CreateAccount(ctx, r, "acct_rot", time.Unix(0, 0)); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	k := &apikey.Key{ID: "key_rot", AccountID: "acct_rot", Name: "rot", Type: apikey.TypeSecret,
		SecretHash: []byte("hash 0"), Status: apikey.StatusActive, Managed: true, KeyHint: "sk_…0000",
		Permissions: map[string][]string{"payment": {"read"}}, Metadata: map[string]string{"a": "b"},
		CreatedAt: now, UpdatedAt: now}
	if err := store.InsertKey(ctx, r, k); err != nil {
		t.Fatal(err)
	}
	var n int
	// rotate reads the key in a unit, checks it against its row, and rotates it.
	rotate := func(tx *tx, hint string) error {
		got, err := tx.Key(ctx, k.ID)
		if err != nil {
			return err
		}
		row, err := scanKey(tx.row(ctx, tx.w.st.getKey, k.ID))
		if err != nil {
			return err
		}
		if !reflect.DeepEqual(got, row) {
			t.Errorf("rotation %d: the unit read\n%+v\nthe row is\n%+v", n, got, row)
		}
		n++
		exp := time.Now().In(time.FixedZone("x", 3600)).Add(time.Hour) // a zone and a monotonic reading, as callers pass
		got.PrevSecretHash, got.PrevSecretExpiresAt = got.SecretHash, &exp
		got.SecretHash, got.KeyHint, got.UpdatedAt = fmt.Appendf(nil, "hash %d", n), hint, time.Now()
		if n%2 == 0 {
			got.PrevSecretHash, got.PrevSecretExpiresAt = nil, nil
		}
		if err := tx.UpdateKey(ctx, got); err != nil {
			return err
		}
		if again, _ := tx.w.keys.peek(k.ID); again == nil {
			t.Errorf("rotation %d: not followed in the cache", n)
		}
		return nil
	}
	// check runs on the writer's goroutine: no t.Fatal there.
	check := func(tx *tx) {
		got, err := tx.Key(ctx, k.ID)
		if err != nil {
			t.Error(err)
			return
		}
		row, err := scanKey(tx.row(ctx, tx.w.st.getKey, k.ID))
		if err != nil {
			t.Error(err)
			return
		}
		if !reflect.DeepEqual(got, row) {
			t.Errorf("after rotation %d: the unit read\n%+v\nthe row is\n%+v", n, got, row)
		}
	}
	errUndo := errors.New("undo")
	release := make(chan struct{})
	var wg sync.WaitGroup
	outcome := make([]error, 4)
	running := make(chan struct{})
	wg.Go(func() {
		outcome[0] = r.InTx(ctx, func(stx store.Tx) error {
			close(running)
			<-release
			return rotate(stx.(*tx), "h1")
		})
	})
	<-running // the writer holds the first unit: the next ones queue behind it
	queue := func(i int, fn func(*tx) error) {
		wg.Go(func() { outcome[i] = r.InTx(ctx, func(stx store.Tx) error { return fn(stx.(*tx)) }) })
		for len(r.w.queue) < i {
			time.Sleep(100 * time.Microsecond)
		}
	}
	queue(1, func(tx *tx) error { // reads the first's rotation, rotates, rolls back
		if err := rotate(tx, ""); err != nil {
			return err
		}
		return errUndo
	})
	queue(2, func(tx *tx) error { check(tx); return rotate(tx, "h3") })
	queue(3, func(tx *tx) error { check(tx); return nil })
	b0 := r.w.batches.Load()
	close(release)
	wg.Wait()
	if b := r.w.batches.Load(); b != b0+1 {
		t.Errorf("the units ran in %d batches, want one", b-b0)
	}
	for i, want := range []error{nil, errUndo, nil, nil} {
		if !errors.Is(outcome[i], want) || want == nil && outcome[i] != nil {
			t.Errorf("unit %d: %v, want %v", i, outcome[i], want)
		}
	}
	// The next batch, from the cache, as committed.
	if err := r.InTx(ctx, func(stx store.Tx) error { check(stx.(*tx)); return rotate(stx.(*tx), "h4") }); err != nil {
		t.Fatal(err)
	}
	// A batch that fails to commit: its rotation is not what the next reads.
	var fail atomic.Bool
	fail.Store(true)
	if err := r.w.conn.Raw(func(dc any) error {
		dc.(interface{ RegisterCommitHook(sqlite3.CommitHookFn) }).RegisterCommitHook(func() int32 {
			if fail.Load() {
				return 1
			}
			return 0
		})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.InTx(ctx, func(stx store.Tx) error { return rotate(stx.(*tx), "h5") }); err == nil {
		t.Fatal("the batch committed")
	}
	fail.Store(false)
	if err := r.InTx(ctx, func(stx store.Tx) error { check(stx.(*tx)); return nil }); err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("%d rotations, want 5", n)
	}
}
