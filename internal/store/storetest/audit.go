package storetest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

func newEvent(id, account, keyID, action string, d time.Duration, changes map[string]any) *audit.Event {
	return &audit.Event{
		ID: id, AccountID: account, KeyID: keyID, Action: action,
		Actor:     apikey.Actor{Kind: apikey.ActorKey, ID: "key_actor", RequestID: "req_" + id},
		ClientIP:  "2001:db8::1",
		CreatedAt: at(d), // nanoseconds, not UTC: Seal truncates and converts
		Changes:   changes,
	}
}

// mustAppend appends events in one unit that locks the account first, as
// the service's units do.
func mustAppend(t *testing.T, r store.Repository, events ...*audit.Event) {
	t.Helper()
	err := r.InTx(t.Context(), func(tx store.Tx) error {
		if err := tx.LockAccount(t.Context(), events[0].AccountID); err != nil {
			return err
		}
		for _, e := range events {
			if err := tx.AppendAuditEvent(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("AppendAuditEvent(%s…): %v", events[0].ID, err)
	}
}

// head is the account's chain head as AuditAccounts lists it.
func head(t *testing.T, r store.Repository, account string) (store.AuditHead, bool) {
	t.Helper()
	heads, err := r.AuditAccounts(t.Context())
	if err != nil {
		t.Fatalf("AuditAccounts: %v", err)
	}
	for _, h := range heads {
		if h.AccountID == account {
			return h, true
		}
	}
	return store.AuditHead{}, false
}

// verify checks an account's chain as the verify tools do: AuditChain
// against the head AuditAccounts lists.
func verify(t *testing.T, r store.Repository, mode apikey.Mode, account string) error {
	t.Helper()
	h, ok := head(t, r, account)
	if !ok {
		t.Fatalf("AuditAccounts does not list %s", account)
	}
	events, err := r.AuditChain(t.Context(), account)
	if err != nil {
		t.Fatalf("AuditChain(%s): %v", account, err)
	}
	return audit.Verify(account, mode, events, h.Seq, h.Hash)
}

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	return b
}

// checkEvent compares an event read from the store with the one appended
// (after AppendAuditEvent sealed it).
func checkEvent(t *testing.T, what string, got, want audit.Event) {
	t.Helper()
	if !got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC {
		t.Errorf("%s: CreatedAt = %v, want %v in UTC", what, got.CreatedAt, want.CreatedAt)
	}
	if got.ChangesJSON != "" || got.Changes == nil {
		// A page's event: the changes as encoding/json writes the map
		// (what an answer writes), which the hash covers too.
		if w := string(mustMarshal(t, orEmpty(want.Changes))); got.ChangesJSON != w || got.Changes != nil {
			t.Errorf("%s: ChangesJSON = %s (Changes %v), want %s", what, got.ChangesJSON, got.Changes, w)
		}
		if err := audit.Verify(got.AccountID, got.Mode, []audit.Event{got}, got.Seq, got.Hash); got.Seq == 1 && err != nil {
			t.Errorf("%s: Verify of the event as read: %v", what, err)
		}
		got.ChangesJSON = ""
		got.Changes = want.Changes
	}
	if !reflect.DeepEqual(got.Changes, want.Changes) {
		t.Errorf("%s: Changes = %#v, want %#v", what, got.Changes, want.Changes)
	}
	got.CreatedAt, want.CreatedAt, got.Changes, want.Changes = time.Time{}, time.Time{}, nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %+v\nwant %+v", what, got, want)
	}
}

// testAuditChain appends events one unit at a time and several in one unit,
// with changes of every JSON kind, and checks the chain: seq 1..n, each
// prev_hash the hash before, the head on the account, and every hash
// verifying after the round trip through the store.
func testAuditChain(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_0") // no events: an empty chain that verifies
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Fatalf("empty chain: %v", err)
	}
	inputs := []map[string]any{
		{"name": "Billing <prod> & \"ops\"", "status": apikey.StatusActive, "managed": false, "deleted": true,
			"expires_at": nil, "key_hint": "sk_live_…Wx9Q", "type": apikey.TypeSecret},
		{"metadata": map[string]any{"team": "pay", "nested": map[string]any{"list": []any{1, "two", true, nil, 2.5}},
			"ünïcode": "✓ \u2028 \t", "empty": ""},
			"permissions": map[string][]string{"account:audit": {"read"}, "payment": {"create", "read"}, "refund": {}}},
		nil, // no changes: stored and read as {}
		{"big": int64(1) << 60, "neg": -7, "small": 1.5e-7, "huge": 1e21, "zero": 0.0, "list": []any{}, "obj": map[string]any{}},
		{"previous_key_expires_at": "2026-03-15T10:09:26.535897Z", "key_hint": "sk_live_…AbCd"},
	}
	var appended []*audit.Event
	for i, c := range inputs {
		e := newEvent(fmt.Sprintf("evt_%d", i+1), "acct_1", "key_1", audit.Update, time.Duration(i)*time.Second, c)
		want := mustMarshal(t, orEmpty(c))
		mustAppend(t, r, e)
		appended = append(appended, e)
		prev := ""
		if i > 0 {
			prev = appended[i-1].Hash
		}
		if e.Seq != int64(i+1) || e.PrevHash != prev || len(e.Hash) != 64 || e.Mode != apikey.Live {
			t.Fatalf("event %d sealed as seq %d prev %.8s hash %q mode %q; want seq %d prev %.8s, a hex hash, live",
				i+1, e.Seq, e.PrevHash, e.Hash, e.Mode, i+1, prev)
		}
		if got := mustMarshal(t, e.Changes); !bytes.Equal(got, want) {
			t.Errorf("event %d: sealed changes encode as %s, want %s (as given)", i+1, got, want)
		}
	}
	// Two events in one unit chain one after the other.
	e6 := newEvent("evt_6", "acct_1", "key_2", audit.Create, 10*time.Second, map[string]any{"name": "six"})
	e7 := newEvent("evt_7", "acct_1", "key_2", audit.Disable, 10*time.Second, map[string]any{"status": "INACTIVE"})
	mustAppend(t, r, e6, e7)
	appended = append(appended, e6, e7)
	if e6.Seq != 6 || e7.Seq != 7 || e7.PrevHash != e6.Hash || e6.PrevHash != appended[4].Hash {
		t.Fatalf("one unit's events: seq %d, %d; want 6, 7 chained", e6.Seq, e7.Seq)
	}

	chain, err := r.AuditChain(ctx, "acct_1")
	if err != nil {
		t.Fatalf("AuditChain: %v", err)
	}
	if len(chain) != len(appended) {
		t.Fatalf("AuditChain = %d events, want %d", len(chain), len(appended))
	}
	for i := range chain {
		checkEvent(t, fmt.Sprintf("AuditChain[%d]", i), chain[i], *appended[i])
		// The changes re-encode to the bytes the hash covers: those of the
		// changes as given.
		if i < len(inputs) {
			if got, want := mustMarshal(t, chain[i].Changes), mustMarshal(t, orEmpty(inputs[i])); !bytes.Equal(got, want) {
				t.Errorf("event %d changes read back encode as %s, want %s", i+1, got, want)
			}
		}
	}
	// A page reads every event as the chain does, its changes as the JSON
	// the hash covers; the page, oldest first, verifies as the chain.
	page, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Limit: 100})
	if err != nil || len(page) != len(appended) {
		t.Fatalf("ListAuditEvents = %d events, %v; want %d", len(page), err, len(appended))
	}
	slices.Reverse(page)
	for i := range page {
		checkEvent(t, fmt.Sprintf("ListAuditEvents[%d]", i), page[i], *appended[i])
	}
	h, ok := head(t, r, "acct_1")
	if err := audit.Verify("acct_1", apikey.Live, page, h.Seq, h.Hash); err != nil {
		t.Errorf("Verify of the page: %v", err)
	}
	if !ok || h.Seq != 7 || h.Hash != e7.Hash {
		t.Errorf("head of acct_1 = %+v, want seq 7 hash %.12s", h, e7.Hash)
	}
	if err := audit.Verify("acct_1", apikey.Live, chain, h.Seq, h.Hash); err != nil {
		t.Errorf("Verify after the round trip: %v", err)
	}
	heads, err := r.AuditAccounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := []store.AuditHead{{AccountID: "acct_0"}, {AccountID: "acct_1", Seq: 7, Hash: e7.Hash}}; !reflect.DeepEqual(heads, want) {
		t.Errorf("AuditAccounts = %+v, want %+v", heads, want)
	}
	if err := verify(t, r, apikey.Live, "acct_0"); err != nil {
		t.Errorf("Verify of an account without events: %v", err)
	}
}

func orEmpty(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// testAuditAppendAborted: an append whose unit fails leaves no event and the
// head as it was; the next append takes the seq the failed one had.
func testAuditAppendAborted(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	first := newEvent("evt_1", "acct_1", "key_1", audit.Create, 0, nil)
	mustAppend(t, r, first)
	failed := errors.New("the change failed")
	err := r.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockAccount(ctx, "acct_1"); err != nil {
			return err
		}
		if err := tx.InsertKey(ctx, newKey("key_2", "acct_1", "two")); err != nil {
			return err
		}
		if err := tx.AppendAuditEvent(ctx, newEvent("evt_lost", "acct_1", "key_2", audit.Create, time.Second, nil)); err != nil {
			return err
		}
		return failed
	})
	if err != failed { //nolint:errorlint // the contract is fn's error itself, not one wrapping it
		t.Fatalf("InTx err = %v, want fn's", err)
	}
	if h, _ := head(t, r, "acct_1"); h.Seq != 1 || h.Hash != first.Hash {
		t.Errorf("head after the failed unit = %+v, want seq 1 %.12s", h, first.Hash)
	}
	if evs, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Limit: 10}); err != nil || len(evs) != 1 || evs[0].ID != "evt_1" {
		t.Errorf("events after the failed unit = %v, %v; want evt_1 only", evs, err)
	}
	if _, err := r.GetKey(ctx, "key_2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the failed unit's key was kept (GetKey err %v)", err)
	}
	next := newEvent("evt_lost", "acct_1", "key_2", audit.Create, 2*time.Second, nil) // the id is free again
	mustAppend(t, r, next)
	if next.Seq != 2 || next.PrevHash != first.Hash {
		t.Errorf("next append: seq %d prev %.12s, want 2 after %.12s", next.Seq, next.PrevHash, first.Hash)
	}
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// testAuditAppendErrors: an event for a missing account, of the other mode,
// without an id or with one taken is refused and writes nothing.
func testAuditAppendErrors(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAppend(t, r, newEvent("evt_1", "acct_1", "key_1", audit.Create, 0, nil))
	appendOne := func(e *audit.Event) error {
		return r.InTx(ctx, func(tx store.Tx) error { return tx.AppendAuditEvent(ctx, e) })
	}
	wantErr(t, "append for a missing account", appendOne(newEvent("evt_2", "acct_missing", "key_1", audit.Create, 0, nil)), store.ErrNoAccount)
	sandbox := newEvent("evt_3", "acct_1", "key_1", audit.Create, 0, nil)
	sandbox.Mode = apikey.Sandbox
	if err := appendOne(sandbox); err == nil {
		t.Error("live store appended an event of the sandbox mode")
	}
	if err := appendOne(newEvent("", "acct_1", "key_1", audit.Create, 0, nil)); err == nil {
		t.Error("appended an event without an id")
	}
	if err := appendOne(newEvent("evt_1", "acct_1", "key_1", audit.Create, 0, nil)); err == nil {
		t.Error("appended an event with a taken id")
	}
	if h, _ := head(t, r, "acct_1"); h.Seq != 1 {
		t.Errorf("head after refused appends: seq %d, want 1", h.Seq)
	}
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// testAuditConcurrentAppends: appends to one chain from many units at once
// run one at a time, with the account locked or not (the store locks the
// head it reads).
func testAuditConcurrentAppends(t *testing.T, s store.Store) {
	const n = 30
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e := newEvent(fmt.Sprintf("evt_%02d", i), "acct_1", "key_1", audit.Update, time.Duration(i)*time.Millisecond,
				map[string]any{"n": i})
			<-start
			errs[i] = r.InTx(ctx, func(tx store.Tx) error {
				if i%2 == 0 {
					if err := tx.LockAccount(ctx, "acct_1"); err != nil {
						return err
					}
				}
				return tx.AppendAuditEvent(ctx, e)
			})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("append #%d: %v", i, err)
		}
	}
	if h, _ := head(t, r, "acct_1"); h.Seq != n {
		t.Errorf("head seq = %d, want %d", h.Seq, n)
	}
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

// testAuditTampering changes the rows behind the store's back, as someone
// with access to the database would: every change breaks the chain at the
// event changed, and another account's chain still verifies.
func testAuditTampering(t *testing.T, s store.Store) {
	r := s.Repo(apikey.Live)
	for _, a := range []string{"acct_changes", "acct_action", "acct_newest", "acct_middle", "acct_head", "acct_intact"} {
		mustAccount(t, r, a)
		for i := 1; i <= 3; i++ {
			mustAppend(t, r, newEvent(fmt.Sprintf("evt_%s_%d", a, i), a, "key_1", audit.Update, time.Duration(i)*time.Second,
				map[string]any{"name": fmt.Sprintf("name %d", i), "metadata": map[string]any{"i": i}}))
		}
		if err := verify(t, r, apikey.Live, a); err != nil {
			t.Fatalf("%s before tampering: %v", a, err)
		}
	}
	mustExec(t, s, apikey.Live, 1, `UPDATE audit_events SET changes = '{"name": "forged"}' WHERE account_id = ? AND seq = 2`, "acct_changes")
	mustExec(t, s, apikey.Live, 1, `UPDATE audit_events SET action = 'delete' WHERE account_id = ? AND seq = 1`, "acct_action")
	mustExec(t, s, apikey.Live, 1, `DELETE FROM audit_events WHERE account_id = ? AND seq = 3`, "acct_newest")
	mustExec(t, s, apikey.Live, 1, `DELETE FROM audit_events WHERE account_id = ? AND seq = 2`, "acct_middle")
	// The head rewritten on the account row: the chain no longer ends where
	// the account says. (Deleting the newest events and rewriting the head to
	// the seq and hash of the event before is what a chain alone cannot
	// catch: that needs a head kept elsewhere.)
	mustExec(t, s, apikey.Live, 1, `UPDATE accounts SET audit_seq = 2 WHERE id = ?`, "acct_head")
	for _, c := range []struct {
		account string
		seq     int64
	}{
		{"acct_changes", 2}, // hash mismatch
		{"acct_action", 1},  // hash mismatch
		{"acct_newest", 3},  // the head records 3 events, the chain has 2
		{"acct_middle", 2},  // missing
		{"acct_head", 4},    // 3 events, the head says 2
	} {
		err := verify(t, r, apikey.Live, c.account)
		var bl *audit.BrokenLink
		if !errors.As(err, &bl) {
			t.Errorf("%s: Verify = %v, want a *audit.BrokenLink", c.account, err)
			continue
		}
		if bl.Seq != c.seq || bl.AccountID != c.account || bl.Mode != apikey.Live {
			t.Errorf("%s: Verify = %v; want broken at seq %d", c.account, err, c.seq)
		}
	}
	if err := verify(t, r, apikey.Live, "acct_intact"); err != nil {
		t.Errorf("untouched account: %v", err)
	}
}

// testListAuditEvents pages newest first with Before, alone and with the
// key_id and action filters.
func testListAuditEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_2")
	actions := []string{audit.Create, audit.Update, audit.Disable, audit.Enable, audit.Update, audit.Regenerate,
		audit.Update, audit.Delete, audit.Create, audit.Update, audit.Bootstrap}
	var all []*audit.Event
	for i, a := range actions {
		key := []string{"key_a", "key_b", "key_c"}[i%3]
		e := newEvent(fmt.Sprintf("evt_%02d", i+1), "acct_1", key, a, time.Duration(i)*time.Second, map[string]any{"i": i})
		mustAppend(t, r, e)
		all = append(all, e)
		mustAppend(t, r, newEvent(fmt.Sprintf("other_%02d", i+1), "acct_2", key, a, time.Duration(i)*time.Second, nil))
	}
	slices.Reverse(all) // newest first
	model := func(f store.AuditFilter) []string {
		var out []string
		for _, e := range all {
			if (f.Before == 0 || e.Seq < f.Before) && (f.KeyID == "" || e.KeyID == f.KeyID) && (f.Action == "" || e.Action == f.Action) {
				out = append(out, e.ID)
			}
		}
		return out
	}
	bySeq := map[int64]*audit.Event{}
	for _, e := range all {
		bySeq[e.Seq] = e
	}
	for _, key := range []string{"", "key_a", "key_b", "key_c", "key_none"} {
		for _, action := range []string{"", audit.Update, audit.Create, audit.Bootstrap, audit.Enable, "unknown"} {
			for _, limit := range []int{1, 2, 3, 100} {
				f := store.AuditFilter{AccountID: "acct_1", KeyID: key, Action: action, Limit: limit}
				want := model(f)
				var got []string
				for pages := 0; ; pages++ {
					evs, err := r.ListAuditEvents(ctx, f)
					if err != nil {
						t.Fatalf("ListAuditEvents(%+v): %v", f, err)
					}
					if len(evs) > limit {
						t.Fatalf("ListAuditEvents(%+v) = %d events", f, len(evs))
					}
					for _, e := range evs {
						got = append(got, e.ID)
						if w := bySeq[e.Seq]; w == nil || w.ID != e.ID {
							t.Fatalf("event %s has seq %d", e.ID, e.Seq)
						} else if limit == 100 {
							checkEvent(t, "ListAuditEvents", e, *w)
						}
					}
					if len(evs) < limit || pages > len(all) {
						break
					}
					f.Before = evs[len(evs)-1].Seq
				}
				if !slices.Equal(got, want) {
					t.Errorf("ListAuditEvents(key %q, action %q) by pages of %d = %v, want %v", key, action, limit, got, want)
				}
			}
		}
	}
	if evs, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Before: 1, Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("ListAuditEvents(before 1) = %d events, %v; want none", len(evs), err)
	}
	if evs, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Before: 5, Limit: 10}); err != nil || len(evs) != 4 || evs[0].Seq != 4 {
		t.Errorf("ListAuditEvents(before 5) = %d events, %v; want seq 4 to 1", len(evs), err)
	}
	if evs, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_missing", Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("ListAuditEvents(missing account) = %d events, %v; want none", len(evs), err)
	}
	if _, err := r.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1"}); err == nil {
		t.Error("ListAuditEvents(limit 0) succeeded, want an error")
	}
	for _, a := range []string{"acct_1", "acct_2"} {
		if err := verify(t, r, apikey.Live, a); err != nil {
			t.Errorf("Verify(%s): %v", a, err)
		}
	}
}

// testAuditModesIsolated: each mode has its own chains.
func testAuditModesIsolated(t *testing.T, s store.Store) {
	ctx := t.Context()
	live, sandbox := s.Repo(apikey.Live), s.Repo(apikey.Sandbox)
	mustAccount(t, live, "acct_1")
	mustAccount(t, sandbox, "acct_1")
	l1 := newEvent("evt_1", "acct_1", "key_1", audit.Create, 0, map[string]any{"name": "live"})
	l2 := newEvent("evt_2", "acct_1", "key_1", audit.Update, time.Second, nil)
	mustAppend(t, live, l1, l2)
	if evs, err := sandbox.ListAuditEvents(ctx, store.AuditFilter{AccountID: "acct_1", Limit: 10}); err != nil || len(evs) != 0 {
		t.Errorf("sandbox ListAuditEvents = %d events, %v; want none", len(evs), err)
	}
	if evs, err := sandbox.AuditChain(ctx, "acct_1"); err != nil || len(evs) != 0 {
		t.Errorf("sandbox AuditChain = %d events, %v; want none", len(evs), err)
	}
	if h, ok := head(t, sandbox, "acct_1"); !ok || h.Seq != 0 || h.Hash != "" {
		t.Errorf("sandbox head = %+v, %v; want an empty chain", h, ok)
	}
	// The same event id in the other mode: its own chain, from 1.
	s1 := newEvent("evt_1", "acct_1", "key_1", audit.Create, 0, map[string]any{"name": "sandbox"})
	mustAppend(t, sandbox, s1)
	if s1.Seq != 1 || s1.PrevHash != "" || s1.Mode != apikey.Sandbox {
		t.Errorf("sandbox event sealed as seq %d prev %q mode %q; want 1, \"\", test", s1.Seq, s1.PrevHash, s1.Mode)
	}
	if err := verify(t, sandbox, apikey.Sandbox, "acct_1"); err != nil {
		t.Errorf("sandbox Verify: %v", err)
	}
	if err := verify(t, live, apikey.Live, "acct_1"); err != nil {
		t.Errorf("live Verify: %v", err)
	}
	if h, _ := head(t, live, "acct_1"); h.Seq != 2 || h.Hash != l2.Hash {
		t.Errorf("live head after the sandbox append = %+v, want seq 2", h)
	}
	evs, err := live.AuditChain(ctx, "acct_1")
	if err != nil || len(evs) != 2 || evs[0].Changes["name"] != "live" || evs[0].Mode != apikey.Live {
		t.Errorf("live AuditChain = %+v, %v; want the two live events", evs, err)
	}
	evs, err = sandbox.AuditChain(ctx, "acct_1")
	if err != nil || len(evs) != 1 || evs[0].Changes["name"] != "sandbox" || evs[0].Mode != apikey.Sandbox {
		t.Errorf("sandbox AuditChain = %+v, %v; want the sandbox event", evs, err)
	}
}

// testDeleteAccountWithEvents: undoing a provisioning removes its events with
// it, and the account made again starts a new chain.
func testDeleteAccountWithEvents(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	provision := func() *audit.Event {
		e := newEvent("evt_boot", "acct_1", "key_1", audit.Bootstrap, 0, map[string]any{"managed": true})
		err := r.InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateAccount(ctx, "acct_1", at(0)); err != nil {
				return err
			}
			if err := tx.InsertKey(ctx, newKey("key_1", "acct_1", "managed")); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, e)
		})
		if err != nil {
			t.Fatalf("provision: %v", err)
		}
		return e
	}
	provision()
	if err := r.InTx(ctx, func(tx store.Tx) error { return tx.DeleteAccount(ctx, "acct_1") }); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if ok, _ := r.AccountExists(ctx, "acct_1"); ok {
		t.Error("account still exists")
	}
	if evs, err := r.AuditChain(ctx, "acct_1"); err != nil || len(evs) != 0 {
		t.Errorf("AuditChain after DeleteAccount = %d events, %v; want none", len(evs), err)
	}
	if _, ok := head(t, r, "acct_1"); ok {
		t.Error("AuditAccounts lists the deleted account")
	}
	if e := provision(); e.Seq != 1 || e.PrevHash != "" {
		t.Errorf("event of the account made again: seq %d prev %q, want a new chain", e.Seq, e.PrevHash)
	}
	if err := verify(t, r, apikey.Live, "acct_1"); err != nil {
		t.Errorf("Verify: %v", err)
	}
}
