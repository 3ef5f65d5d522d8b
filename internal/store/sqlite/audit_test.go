package sqlite_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// TestAuditPageWithNULs: a page reads each event as its columns joined by
// NULs; an event whose texts hold a NUL themselves (SQLite keeps them) reads
// back exactly all the same, by the statement that reads column by column,
// on every filter's shape, and the page verifies as the chain.
func TestAuditPageWithNULs(t *testing.T) {
	ctx := t.Context()
	s, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	r := s.Repo(apikey.Live)
	now := time.Now().UTC()
	if err := store.CreateAccount(ctx, r, "acct_1", now); err != nil {
		t.Fatal(err)
	}
	var appended []audit.Event
	for i, texts := range [][2]string{{"req_1", "plain"}, {"req\x00nul", "a\x00b"}, {"req_3", "\x00"}, {"req_4", "é <>"}} {
		e := &audit.Event{
			ID: "evt_" + string(rune('a'+i)), AccountID: "acct_1", KeyID: "key_1", Action: audit.Update,
			Actor: apikey.Actor{Kind: apikey.ActorKey, ID: texts[1], RequestID: texts[0]}, ClientIP: texts[1],
			CreatedAt: now.Add(time.Duration(i) * time.Second), Changes: map[string]any{"name": texts[1], "n": i},
		}
		err := r.InTx(ctx, func(tx store.Tx) error {
			if err := tx.LockAccount(ctx, "acct_1"); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, e)
		})
		if err != nil {
			t.Fatal(err)
		}
		appended = append(appended, *e)
	}
	chain, err := r.AuditChain(ctx, "acct_1")
	if err != nil || len(chain) != len(appended) {
		t.Fatalf("AuditChain = %d events, %v", len(chain), err)
	}
	for _, f := range []store.AuditFilter{
		{AccountID: "acct_1", Limit: 10}, {AccountID: "acct_1", Limit: 10, Before: 4},
		{AccountID: "acct_1", Limit: 10, KeyID: "key_1", Action: audit.Update}, {AccountID: "acct_1", Limit: 2},
	} {
		page, err := r.ListAuditEvents(ctx, f)
		if err != nil {
			t.Fatalf("ListAuditEvents(%+v): %v", f, err)
		}
		want := slices.Clone(chain)
		if f.Before > 0 {
			want = want[:f.Before-1]
		}
		slices.Reverse(want)
		want = want[:min(len(want), f.Limit)]
		if len(page) != len(want) {
			t.Fatalf("ListAuditEvents(%+v) = %d events, want %d", f, len(page), len(want))
		}
		for i, got := range page {
			w := want[i]
			b, err := json.Marshal(w.Changes)
			if err != nil {
				t.Fatal(err)
			}
			if got.ChangesJSON != string(b) {
				t.Errorf("%s: ChangesJSON %s, want %s", got.ID, got.ChangesJSON, b)
			}
			got.ChangesJSON, w.Changes = "", nil
			if !reflect.DeepEqual(got, w) {
				t.Errorf("ListAuditEvents(%+v)[%d]:\n got %+v\nwant %+v", f, i, got, w)
			}
		}
	}
	page, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(page)
	if err := audit.Verify("acct_1", apikey.Live, page, 4, appended[3].Hash); err != nil {
		t.Errorf("Verify of the page: %v", err)
	}
}
