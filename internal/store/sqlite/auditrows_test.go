package sqlite

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestJoinedPageIsScanEvents: ListAuditEvents, which reads a page as one
// text (splitJoinedPage), gives what reading the page's rows column by
// column (scanEvents) gives, events or error, on every filter's shape, for
// rows of random values: texts holding the page's separators (NUL, \x01)
// anywhere, first and last in a row and in the page included, seqs stored
// as texts, reals and blobs, texts stored as numbers and blobs, bad times
// and bad changes.
func TestJoinedPageIsScanEvents(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := s.repos[apikey.Sandbox]
	db := s.DB(apikey.Sandbox)
	rnd := rand.New(rand.NewPCG(7, 8)) //nolint:gosec // test values, seeded to be repeatable
	pick := func(vs ...any) any { return vs[rnd.IntN(len(vs))] }
	// usual is mostly the first value, now and then one of the others.
	usual := func(v any, odd ...any) any {
		if rnd.IntN(30) > 0 {
			return v
		}
		return pick(odd...)
	}
	now := time.Now().UTC()
	text := func() any {
		return usual(pick("x", "", "é ✓", `q"\`, "key_1", "a b"), "a\x00b", "\x01", "a\x01", "\x01b", "\x00", int64(7), 2.5, []byte("blob\x01"))
	}
	const accounts = 400
	joined, fallbacks := 0, 0
	for a := range accounts {
		acct := fmt.Sprintf("acct_%d", a)
		if a%40 == 1 {
			acct = "\x01" + acct // the first text of its rows
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`, acct, fmtTime(now)); err != nil {
			t.Fatal(err)
		}
		n := rnd.IntN(8)
		for i := range n {
			seq := usual(int64(i+1), fmt.Sprintf("s%d", i), float64(i)+0.5, " 9", []byte{byte(i)}, int64(-i))
			hash := usual(fmt.Sprintf("%064x", rnd.Uint64()), fmt.Sprintf("h%d\x01", i), "\x00", []byte("\x01"))
			_, err := db.ExecContext(ctx, `INSERT INTO audit_events (account_id, seq, id, mode, action, key_id,
				actor_kind, actor_id, request_id, client_ip, created_at, changes, prev_hash, hash)
				VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
				acct, seq, fmt.Sprintf("evt_%d_%d%v", a, i, usual("", "\x00", "\x01")), usual(string(apikey.Sandbox), text()),
				pick(audit.Create, audit.Update), pick("key_1", "key_2"), text(), text(), text(), text(),
				usual(fmtTime(now.Add(time.Duration(i)*time.Second)), "bad", int64(5)),
				usual(pick(`{}`, `{"name":"a","n":1}`, `{"b":[1,"x"],"a":{"z":null}}`), `nope`, `{"k":"\u0001"}`, "{\"k\":\"\x01\"}"),
				fmt.Sprintf("%064x", rnd.Uint64()), hash)
			if err != nil && !isUnique(err) { // a seq taken twice: that row is left out
				t.Fatalf("insert: %v", err)
			}
		}
		for _, f := range []store.AuditFilter{
			{AccountID: acct, Limit: 10}, {AccountID: acct, Limit: 2}, {AccountID: acct, Limit: 10, Before: 4},
			{AccountID: acct, Limit: 10, KeyID: "key_1"}, {AccountID: acct, Limit: 10, Action: audit.Update},
			{AccountID: acct, Limit: 10, Before: 6, KeyID: "key_2", Action: audit.Create},
		} {
			got, err := r.ListAuditEvents(ctx, f)
			want, werr := pageByColumn(ctx, r, f)
			same(t, fmt.Sprintf("%q %+v", acct, f), got, err, want, werr)
			var page *string
			if err := r.listEvents.st[eventShape(f)].Load().QueryRowContext(ctx, eventArgs(f)...).Scan(&page); err != nil { //nolint:sqlclosecheck // the store keeps the statement; Scan closes the row
				t.Fatal(err)
			}
			if page != nil {
				if _, ok, _ := splitJoinedPage(*page, f.Limit); ok {
					joined++
				} else {
					fallbacks++
				}
			}
		}
	}
	t.Logf("%d pages read joined, %d column by column", joined, fallbacks)
	if joined < 500 || fallbacks < 200 {
		t.Fatalf("%d pages read joined, %d column by column: the rows do not cover both", joined, fallbacks)
	}
}

// eventShape and eventArgs are ListAuditEvents' statement shape and
// arguments for f.
func eventShape(f store.AuditFilter) int {
	shape := 0
	if f.Before > 0 {
		shape |= eventsBefore
	}
	if f.KeyID != "" {
		shape |= eventsKey
	}
	if f.Action != "" {
		shape |= eventsAction
	}
	return shape
}

func eventArgs(f store.AuditFilter) []any {
	args := []any{f.AccountID, nil, nil, nil, f.Limit}
	if f.Before > 0 {
		args[1] = f.Before
	}
	if f.KeyID != "" {
		args[2] = f.KeyID
	}
	if f.Action != "" {
		args[3] = f.Action
	}
	return args
}

// pageByColumn is the page f selects read row by row, column by column.
func pageByColumn(ctx context.Context, r *Repo, f store.AuditFilter) ([]audit.Event, error) {
	st, err := r.listEvents.stmt(ctx, eventShape(f)|eventsByColumn) //nolint:sqlclosecheck // shapes keeps it
	if err != nil {
		return nil, err
	}
	rows, err := st.QueryContext(ctx, eventArgs(f)...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows, f.Limit, true)
}
