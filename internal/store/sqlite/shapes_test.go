package sqlite

import (
	"context"
	"strings"
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
	// Every shape pages along an index, without sorting: a page costs its
	// rows, whatever the account holds before the cursor.
	for shape := range listShapes + eventShapes {
		text, args := "", make([]any, 10)
		if shape < listShapes {
			text = listKeysSQL(shape)
		} else {
			text = listEventsSQL(shape - listShapes)
		}
		plan := queryPlan(ctx, t, r, text, args)
		if !strings.Contains(plan, "USING INDEX") || strings.Contains(plan, "TEMP B-TREE") {
			t.Errorf("%s\nplan: %s", text, plan)
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

// queryPlan is SQLite's EXPLAIN QUERY PLAN of text, its steps' details joined.
func queryPlan(ctx context.Context, t *testing.T, r *Repo, text string, args []any) string {
	t.Helper()
	rows, err := r.rdb.QueryContext(ctx, "EXPLAIN QUERY PLAN "+text, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	var steps []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		steps = append(steps, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(steps, "; ")
}
