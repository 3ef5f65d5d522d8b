package postgres_test

import (
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestAuditPageByEitherPath: a page is read from the rows' raw values when
// seq and created_at come in binary, and by Scan otherwise (the simple
// protocol sends every column as text); both read the same events, which
// verify as the chain.
func TestAuditPageByEitherPath(t *testing.T) {
	s, simple := openBothProtocols(t)
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	now := time.Now()
	if err := store.CreateAccount(ctx, r, "acct_1", now); err != nil {
		t.Fatal(err)
	}
	changes := []map[string]any{
		{"name": "a <b> & \"c\" \u2028 é", "n": 1 << 60, "f": 1.5e-7, "big": 1e21, "list": []any{"x", nil, true}},
		{"metadata": map[string]any{"zz": "1", "a": "2", "mm": map[string]any{"k": []any{}}}, "deleted": false},
		nil, {"ctl": "\x01\b\f\n"},
	}
	for i, c := range changes {
		e := &audit.Event{ID: fmt.Sprintf("evt_%d", i), AccountID: "acct_1", KeyID: "key_1", Action: audit.Update,
			Actor: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req ✓"}, ClientIP: "192.0.2.1",
			CreatedAt: now.Add(time.Duration(i) * time.Second), Changes: c}
		err := r.InTx(ctx, func(tx store.Tx) error {
			if err := tx.LockAccount(ctx, "acct_1"); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, e)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	f := store.AuditFilter{AccountID: "acct_1", Limit: 10}
	raw, err := r.ListAuditEvents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	scanned, err := simple.Repo(apikey.Live).ListAuditEvents(ctx, f)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) != len(changes) || !reflect.DeepEqual(raw, scanned) {
		t.Fatalf("raw values read\n%+v\nScan read\n%+v", raw, scanned)
	}
	chain, err := r.AuditChain(ctx, "acct_1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range raw {
		page := raw[len(raw)-1-i]
		if page.CreatedAt.Location() != time.UTC || !page.CreatedAt.Equal(chain[i].CreatedAt) || page.Hash != chain[i].Hash {
			t.Errorf("event %d: page %+v, chain %+v", i, page, chain[i])
		}
	}
	for i, j := 0, len(raw)-1; i < j; i, j = i+1, j-1 {
		raw[i], raw[j] = raw[j], raw[i]
	}
	if err := audit.Verify("acct_1", apikey.Live, raw, int64(len(raw)), raw[len(raw)-1].Hash); err != nil {
		t.Errorf("Verify of the page: %v", err)
	}
}
