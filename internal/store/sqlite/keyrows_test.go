package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestJoinedKeyIsScanKey: GetKey and ListKeys, which read a key as one
// joined text (scanJoinedKey), give what reading it column by column
// (scanKey) gives, key or error, for rows of random values in every column:
// texts with NULs, escapes and numbers, blobs of any bytes or stored as
// text or numbers, flags and numbers stored as reals or texts, NULLs, bad
// JSON, times and networks.
func TestJoinedKeyIsScanKey(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := s.repos[apikey.Sandbox]
	db := s.DB(apikey.Sandbox)
	rnd := rand.New(rand.NewPCG(5, 6)) //nolint:gosec // test values, seeded to be repeatable
	pick := func(vs ...any) any { return vs[rnd.IntN(len(vs))] }
	// usual is mostly the first value, now and then one of the others
	// (never while clean).
	clean := false
	usual := func(v any, odd ...any) any {
		if clean || rnd.IntN(25) > 0 {
			return v
		}
		return pick(odd...)
	}
	now := time.Now().UTC()
	ts := func() any { return fmtTime(now.Add(time.Duration(rnd.Int64N(1e15)) - 5e14)) }
	text := func() any {
		return usual(pick("x", "", "é ✓", `q"\`, "v", ts()), "a\x00b", int64(7), "\x00")
	}
	nullable := func(v func() any) any {
		if rnd.IntN(3) == 0 {
			return nil
		}
		return v()
	}
	num := func() any {
		return usual(pick(int64(0), int64(3), int64(-5), int64(1)<<40, int64(86400), "12"), 2.5, 3.0, "x", " 4")
	}
	fallbacks, joined := 0, 0
	const rows, pageRows = 3000, 60
	for i := range rows + pageRows {
		// The last pageRows, of usual values only, are one account's page.
		acct := fmt.Sprintf("acct_%d", min(i, rows))
		clean = i >= rows
		if i <= rows {
			if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, acct, fmtTime(now)); err != nil {
				t.Fatal(err)
			}
		}
		id := fmt.Sprintf("key_%d", i)
		if !clean && rnd.IntN(25) == 0 {
			id += "\x00z"
		}
		hash := usual([]byte(fmt.Sprintf("h\x00\xff%d", i)), fmt.Sprintf("text%d", i), int64(i+1e6))
		var prev any
		switch rnd.IntN(4) {
		case 1:
			prev = []byte(fmt.Sprintf("p\x00\xfe%d", i))
		case 2:
			prev = usual(nil, any(fmt.Sprintf("ptext%d", i)), 1.5+float64(i))
		case 3:
			if i == 7 {
				prev = []byte{} // unique: once
			}
		}
		perms := usual(pick(`{}`, `{"a":["read","write"],"b":[]}`), `{"a":null}`, `{"a\u0000":["x"]}`, `[`, int64(1))
		meta := usual(pick(`{}`, `{"k":"v"}`), `{"k":1}`, `{"k":"\u003c"}`, `nope`)
		refill := usual(pick("", apikey.RefillDaily, apikey.RefillMonthly), "weekly")
		if clean {
			refill = pick(apikey.RefillDaily, apikey.RefillMonthly) // whatever the amount: a refill that reads
		}
		_, err := db.ExecContext(ctx, `INSERT INTO api_keys (id, account_id, name, type, secret_hash, permissions, metadata,
			status, managed, deleted, last_used_at, last_used_ip, expires_at, created_at, updated_at, prev_secret_hash,
			prev_secret_expires_at, created_by_kind, created_by_id, created_by_request, key_hint, name_key, allowed_networks,
			rate_limit, rate_window_seconds, credits_remaining, credits_refill_amount, credits_refill_interval,
			credits_refill_day, credits_refilled_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
			id, acct, fmt.Sprintf("%v %d", text(), i), pick(apikey.TypeSecret, apikey.TypePublishable), hash, perms, meta,
			usual(pick(apikey.StatusActive, apikey.StatusInactive), "x\x00"), usual(pick(int64(0), int64(1), "1"), int64(2), 1.0, "true"), int64(0),
			nullable(func() any { return usual(ts(), "yesterday", int64(5)) }), nullable(text), nullable(ts), ts(),
			usual(ts(), "bad"), prev, nullable(ts), text(), text(), text(), nullable(text),
			nullable(func() any { return fmt.Sprintf("%v %d", text(), i) }),
			usual(pick("", "10.0.0.0/8", "10.0.0.0/8,2001:db8::/32"), "nonsense"), num(), num(),
			nullable(num), num(), refill, usual(pick(int64(0), int64(15)), "3", 2.0), num())
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
		if clean {
			continue
		}
		var row string
		if err := r.getKeyJoined.QueryRowContext(ctx, id).Scan(&row); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := scanJoinedKey(row, nil); ok {
			joined++
		} else {
			fallbacks++
		}
		want, werr := scanKey(r.getKey.QueryRowContext(ctx, id))
		got, err := r.GetKey(ctx, id)
		same(t, fmt.Sprintf("GetKey %d", i), got, err, want, werr)
		f := store.KeyFilter{AccountID: acct, Now: now, Limit: 10}
		gotPage, err := r.ListKeys(ctx, f)
		var wantPage []*apikey.Key
		if werr == nil {
			wantPage = []*apikey.Key{want}
		}
		same(t, fmt.Sprintf("ListKeys %d", i), gotPage, err, wantPage, werr)
	}
	// A page of many keys (their hashes share a buffer), against the
	// statement that reads the columns one by one.
	f := store.KeyFilter{AccountID: fmt.Sprintf("acct_%d", rows), Now: now, Limit: 100}
	got, err := r.ListKeys(ctx, f)
	st, werr := r.listKeys.stmt(ctx, listByColumn) //nolint:sqlclosecheck // shapes keeps it
	if werr != nil {
		t.Fatal(werr)
	}
	byColumn, werr := st.QueryContext(ctx, f.AccountID, false, nil, nil, nil, nil, nil, nil, nil, f.Limit)
	if werr != nil {
		t.Fatal(werr)
	}
	defer func() { _ = byColumn.Close() }()
	var want []*apikey.Key
	for byColumn.Next() {
		k, err := scanKey(byColumn)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, k)
	}
	if err := byColumn.Err(); err != nil {
		t.Fatal(err)
	}
	if len(want) != pageRows {
		t.Fatalf("%d keys by column, want %d", len(want), pageRows)
	}
	same(t, "a page", got, err, want, nil)
	t.Logf("%d keys read joined, %d column by column", joined, fallbacks)
	if joined < rows/10 || fallbacks < rows/10 {
		t.Fatalf("%d keys read joined, %d column by column: the rows do not cover both", joined, fallbacks)
	}
}

// same fails unless got and err are want and werr (errors by their text).
func same[T any](t *testing.T, what string, got T, err error, want T, werr error) {
	t.Helper()
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("%s: error %v, column by column %v", what, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}
