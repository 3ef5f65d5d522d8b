package sqlite

import (
	"context"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// TestEveryListShapeRuns: each combination of ListKeys's and
// ListAuditEvents's filters prepares and runs (the conformance suite runs
// only some), and asking for a shape twice gives the statement prepared once.
func TestEveryListShapeRuns(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over: closing only frees the files
	r := st.repos[apikey.Sandbox]
	if err := store.CreateAccount(ctx, r, "acct_shapes", time.Now()); err != nil {
		t.Fatal(err)
	}
	managed := true
	for shape := range listShapes {
		f := store.KeyFilter{AccountID: "acct_shapes", Now: time.Now(), Limit: 5,
			Status: []string{"", apikey.StatusActive, statusExpired, apikey.StatusInactive}[shape&3]}
		if shape&listType != 0 {
			f.Type = apikey.TypeSecret
		}
		if shape&listManaged != 0 {
			f.Managed = &managed
		}
		if shape&listCreatedBy != 0 {
			f.CreatedBy = "key_x"
		}
		if shape&listAfter != 0 {
			f.After = &store.KeyCursor{CreatedAt: time.Now(), ID: "key_x"}
		}
		if _, err := r.ListKeys(ctx, f); err != nil {
			t.Errorf("ListKeys shape %#x (%s): %v", shape, listKeysSQL(shape), err)
		}
	}
	for shape := range eventShapes {
		f := store.AuditFilter{AccountID: "acct_shapes", Limit: 5}
		if shape&eventsBefore != 0 {
			f.Before = 9
		}
		if shape&eventsKey != 0 {
			f.KeyID = "key_x"
		}
		if shape&eventsAction != 0 {
			f.Action = "api_key.created"
		}
		if _, err := r.ListAuditEvents(ctx, f); err != nil {
			t.Errorf("ListAuditEvents shape %#x (%s): %v", shape, listEventsSQL(shape), err)
		}
	}
	a, err := r.listKeys.stmt(ctx, listActive|listAfter) //nolint:sqlclosecheck // shapes keeps it
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := r.listKeys.stmt(ctx, listActive|listAfter); a != b { //nolint:sqlclosecheck // shapes keeps it
		t.Errorf("a shape was prepared twice")
	}
}
