package sqlite

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// TestStatementPlans: every statement the store runs on a table finds its
// rows through an index (SEARCH, never a SCAN of a table or of a whole
// index), and the statements that rely on a particular index (migration
// 00015 merged two) use it, the audit page its primary key. The list
// pages' plans are also TestEveryListShapeRuns'.
func TestStatementPlans(t *testing.T) {
	ctx := context.Background()
	st, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }() // the test is over: closing only frees the files
	r := st.repos[apikey.Sandbox]

	texts := append([]string{getKeySQL, byHashSQL, accountExistsSQL, managedKeysSQL, nameKeySQL.Taken}, fastReadSQL()...)
	for _, p := range (&writer{}).statements() {
		texts = append(texts, p.sql)
	}
	for shape := range listShapes {
		texts = append(texts, listKeysSQL(shape))
	}
	for shape := range eventShapes {
		texts = append(texts, listEventsSQL(shape))
	}
	// What a statement must use (a part of its plan).
	want := map[string]string{
		managedKeysSQL:   "SEARCH api_keys USING INDEX api_keys_account_keys (account_id=? AND deleted=?)",
		nameKeySQL.Taken: "SEARCH api_keys USING COVERING INDEX api_keys_account_name_key (account_id=? AND name_key=?)",
		`DELETE FROM api_keys WHERE account_id = ?`: "SEARCH api_keys USING COVERING INDEX api_keys_account_keys (account_id=?)",
	}
	// The audit page (the newest events, then the ones before a cursor) in
	// the primary key's order, read as one text or column by column.
	for _, shape := range []int{0, eventsByColumn} {
		want[listEventsSQL(shape)] = "SEARCH audit_events USING INDEX sqlite_autoindex_audit_events_2 (account_id=?)"
		want[listEventsSQL(shape|eventsBefore)] = "SEARCH audit_events USING INDEX sqlite_autoindex_audit_events_2 (account_id=? AND seq<?)"
	}
	var capSQL, releaseSQL string
	for _, p := range (&writer{}).statements() {
		switch {
		case strings.Contains(p.sql, "live_keys < ?3"):
			capSQL = p.sql
		case strings.Contains(p.sql, "SET name_released = 1"):
			releaseSQL = p.sql
		}
	}
	want[capSQL] = "SEARCH api_keys USING COVERING INDEX api_keys_account_keys (account_id=? AND deleted=?)"
	want[releaseSQL] = "SEARCH api_keys USING INDEX api_keys_account_name_key (account_id=? AND name_key=?)"
	// A step that reads a table: SEARCH is a lookup or a range; SCAN reads it all.
	scan := regexp.MustCompile(`\bSCAN (api_keys|audit_events|accounts|idempotency_records)\b`)
	seen := map[string]bool{}
	for _, text := range texts {
		if !strings.Contains(text, " ") || strings.HasPrefix(text, "PRAGMA") || strings.HasPrefix(text, "SAVEPOINT") ||
			strings.HasPrefix(text, "ROLLBACK") || strings.HasPrefix(text, "RELEASE") || strings.HasPrefix(text, "BEGIN") {
			continue // no table
		}
		plan := queryPlan(ctx, t, r, text, make([]any, strings.Count(text, "?")+21))
		seen[text] = true
		if testing.Verbose() { // go test -run TestStatementPlans -v lists them
			t.Logf("%s\n  plan: %s", strings.Join(strings.Fields(text), " "), plan)
		}
		if scan.MatchString(plan) {
			t.Errorf("%s\nscans a table: %s", text, plan)
		}
		if w, ok := want[text]; ok && !strings.Contains(plan, w) {
			t.Errorf("%s\nplan: %s\nwant: %s", text, plan, w)
		}
	}
	for text := range want {
		if !seen[text] {
			t.Errorf("no statement %q", text)
		}
	}
}
