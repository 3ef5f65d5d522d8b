package postgres_test

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
)

// TestKeysByEitherPath: GetKey and ListKeys read keys from the rows' raw
// values when the columns come in binary, and by Scan otherwise (the
// simple protocol sends every column as text); both read the same keys,
// or fail alike, for rows of random values in every column: NULLs, empty
// and binary hashes, escapes, jsonb of any shape, infinite and zoned
// times, extreme numbers, bad networks and refills.
func TestKeysByEitherPath(t *testing.T) {
	s, simple := openBothProtocols(t)
	ctx := t.Context()
	fast, slow := s.Repo(apikey.Live), simple.Repo(apikey.Live)
	keys := pgx.Identifier{postgres.Schemas[apikey.Live], "api_keys"}.Sanitize()
	rnd := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // test values, seeded to be repeatable
	pick := func(vs ...any) any { return vs[rnd.IntN(len(vs))] }
	usual := func(v any, odd ...any) any {
		if rnd.IntN(20) > 0 {
			return v
		}
		return pick(odd...)
	}
	now := time.Now()
	ts := func() any {
		return usual(now.Add(time.Duration(rnd.Int64N(1e15))-5e14).In(time.FixedZone("z", 3600*rnd.IntN(5))),
			"infinity", "-infinity", time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC))
	}
	text := func() any { return pick("x", "", "é ✓", `q"\`, "a<b>&", "\u2028") }
	nullable := func(v func() any) any {
		if rnd.IntN(3) == 0 {
			return nil
		}
		return v()
	}
	const accounts = 40
	for a := range accounts {
		if err := store.CreateAccount(ctx, fast, fmt.Sprintf("acct_%d", a), now); err != nil {
			t.Fatal(err)
		}
	}
	const rows = 600
	for i := range rows {
		var prev any
		switch {
		case i == 5:
			prev = []byte{} // unique: once
		case rnd.IntN(2) == 0:
			prev = []byte(fmt.Sprintf("p\x00\xff%d", i))
		}
		_, err := s.Pool().Exec(ctx, `INSERT INTO `+keys+` (id, account_id, name, type, secret_hash, permissions, metadata,
			status, managed, deleted, last_used_at, last_used_ip, expires_at, created_at, updated_at,
			created_by_kind, created_by_id, created_by_request, key_hint, name_key, allowed_networks,
			rate_limit, rate_window_seconds, credits_remaining, credits_refill_amount, credits_refill_interval,
			credits_refill_day, credits_refilled_at, prev_secret_hash, prev_secret_expires_at)
			VALUES ($1,$2,$3,$4,$5,$6::jsonb,$7::jsonb,$8,$9,$10,$11::timestamptz,$12,$13::timestamptz,$14::timestamptz,$15::timestamptz,
			$16,$17,$18,$19,$20,$21,$22,$23,$24,$25,$26,$27,$28,$29,$30::timestamptz)`,
			fmt.Sprintf("key_%04d", i), fmt.Sprintf("acct_%d", rnd.IntN(accounts)), fmt.Sprintf("name %d %v", i, text()),
			pick(apikey.TypeSecret, apikey.TypePublishable), []byte(fmt.Sprintf("h\x00\xfe%d", i)),
			usual(pick(`{}`, `{"a": ["read", "write"], "b": []}`), `{"a": null}`, `{"a\u0001": ["x"]}`, `[1]`, `{"a": "b"}`),
			usual(pick(`{}`, `{"k": "v", "<": "é"}`), `{"k": 1}`, `{"k": "\u2028"}`, `"s"`),
			pick(apikey.StatusActive, apikey.StatusInactive), rnd.IntN(2) == 0, false,
			nullable(ts), nullable(text), nullable(ts), ts(), ts(),
			text(), text(), text(), nullable(text), nullable(func() any { return fmt.Sprintf("nk %d %v", i, text()) }),
			usual(pick("", "10.0.0.0/8", "10.0.0.0/8,2001:db8::/32"), "nonsense"),
			usual(rnd.Int32N(1000), int32(-1), int32(1<<31-1)), pick(int32(60), int32(3600), int32(86400)),
			nullable(func() any { return usual(rnd.Int64N(1e12), int64(-1)<<63, int64(1)<<62) }),
			rnd.Int64N(1e6), usual(pick("", apikey.RefillDaily, apikey.RefillMonthly), "weekly"),
			rnd.Int32N(32), usual(now.Unix()-rnd.Int64N(1e7), int64(-1)<<63), prev, nullable(ts))
		if err != nil {
			t.Fatalf("insert %d: %v", i, err)
		}
	}
	failed := 0
	for i := range rows {
		id := fmt.Sprintf("key_%04d", i)
		want, werr := slow.GetKey(ctx, id)
		got, err := fast.GetKey(ctx, id)
		if werr != nil {
			failed++
		}
		sameKeys(t, "GetKey "+id, got, err, want, werr)
	}
	if _, err := fast.GetKey(ctx, "key_none"); err != store.ErrNotFound { //nolint:errorlint // the store's sentinel as it is
		t.Fatalf("GetKey of no key: %v", err)
	}
	if failed == 0 || failed > rows/2 {
		t.Fatalf("%d of %d keys fail to read: the rows do not cover both", failed, rows)
	}
	pages := 0
	for a := range accounts {
		for _, limit := range []int{1, 3, 100} {
			f := store.KeyFilter{AccountID: fmt.Sprintf("acct_%d", a), Now: now, Limit: limit}
			want, werr := slow.ListKeys(ctx, f)
			got, err := fast.ListKeys(ctx, f)
			sameKeys(t, fmt.Sprintf("ListKeys %+v", f), got, err, want, werr)
			if werr == nil && len(want) > 0 {
				pages++
			}
		}
	}
	if pages == 0 {
		t.Fatal("no page read without error: the rows do not cover it")
	}
}

func sameKeys[T any](t *testing.T, what string, got T, err error, want T, werr error) {
	t.Helper()
	if (err == nil) != (werr == nil) || (err != nil && err.Error() != werr.Error()) {
		t.Fatalf("%s: error %v, by Scan %v", what, err, werr)
	}
	if err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("%s:\n got %#v\nwant %#v", what, got, want)
	}
}
