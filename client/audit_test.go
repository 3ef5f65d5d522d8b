package client_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// serverEvents builds a chain the way the server does (audit.Event.Seal),
// with changes of every shape the server records, and returns it with the
// client's view of it: each event through JSON, as the API renders it.
func serverEvents(t *testing.T, n int) ([]audit.Event, []client.AuditEvent) {
	t.Helper()
	base := time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.FixedZone("CET", 3600)) // nanoseconds and a zone: Seal normalises
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	changes := []map[string]any{
		{"name": "Checkout <backend> & co", "type": "SECRET", "managed": true, "permissions": map[string][]string{"payment": {"read", "create"}, "account:api:key": {"create"}},
			"metadata": map[string]string{"z": "1", "a": "é\u2028"}, "key_hint": "sk_test_…3kP9", "expires_at": nil},
		{"status": "INACTIVE"},
		{"expires_at": exp, "previous_key_expires_at": exp.Add(time.Hour)},
		{"deleted": true},
		nil,
	}
	var (
		head   string
		out    []audit.Event
		actors = []apikey.Actor{{Kind: "platform", ID: "bootstrap"}, {Kind: "key", ID: "key_x", RequestID: "req_1"}, {Kind: "jwt", ID: "ann@example.com", RequestID: "req_2"}}
	)
	for i := range n {
		e := audit.Event{
			ID: "evt_" + string(rune('a'+i%26)), AccountID: "acct_audit", Mode: apikey.Sandbox,
			Action: []string{audit.Bootstrap, audit.Disable, audit.Update, audit.Delete, audit.Create}[i%5], KeyID: "key_k",
			Actor: actors[i%3], ClientIP: []string{"", "203.0.113.7", "2001:db8::1"}[i%3],
			CreatedAt: base.Add(time.Duration(i) * 1500 * time.Microsecond), Changes: changes[i%len(changes)],
		}
		if err := e.Seal(int64(i), head); err != nil {
			t.Fatal(err)
		}
		head = e.Hash
		out = append(out, e)
	}
	var views []client.AuditEvent
	for _, e := range out {
		views = append(views, toView(t, e))
	}
	return out, views
}

// toView renders e as the API's JSON and decodes it as the client does.
func toView(t *testing.T, e audit.Event) client.AuditEvent {
	t.Helper()
	changes := e.Changes
	if changes == nil {
		changes = map[string]any{}
	}
	b, err := json.Marshal(map[string]any{
		"object": "audit_event", "id": e.ID, "seq": e.Seq, "account_id": e.AccountID, "mode": e.Mode, "action": e.Action,
		"key_id": e.KeyID, "actor": map[string]string{"kind": e.Actor.Kind, "id": e.Actor.ID, "request_id": e.Actor.RequestID},
		"client_ip": e.ClientIP, "created_at": e.CreatedAt, "changes": changes, "prev_hash": e.PrevHash, "hash": e.Hash,
	})
	if err != nil {
		t.Fatal(err)
	}
	var v client.AuditEvent
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func serverHash(t *testing.T, e *audit.Event) string {
	t.Helper()
	b, err := e.Canonical()
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// TestAuditHashMatchesTheServer holds the client's encoder and the server's
// (internal/audit, Event.Canonical) together: the same event hashes the same
// on both sides, as sealed and as the API's JSON hands it to the client.
func TestAuditHashMatchesTheServer(t *testing.T) {
	events, views := serverEvents(t, 10)
	for i := range events {
		got, err := client.AuditEventHash(&views[i])
		if err != nil {
			t.Fatal(err)
		}
		if got != events[i].Hash || got != serverHash(t, &events[i]) {
			t.Fatalf("seq %d: client hash %s, server %s", events[i].Seq, got, events[i].Hash)
		}
	}
	// Also for an event that was never sealed (time not truncated, no changes):
	// the two encoders agree on every input, not only on sealed ones.
	raw := audit.Event{ID: "evt_raw", Seq: 3, AccountID: "a", Mode: apikey.Live, Action: audit.Enable, KeyID: "key_r",
		CreatedAt: time.Date(2026, 1, 1, 0, 0, 0, 999, time.UTC), PrevHash: "00"}
	v := client.AuditEvent{ID: "evt_raw", Seq: 3, AccountID: "a", Mode: "live", Action: client.AuditEnable, KeyID: "key_r",
		CreatedAt: raw.CreatedAt, PrevHash: "00"}
	if got, _ := client.AuditEventHash(&v); got != serverHash(t, &raw) {
		t.Fatalf("unsealed event: client %s, server %s", got, serverHash(t, &raw))
	}
	// And the server's own verification accepts the chain the client accepts.
	if err := audit.Verify("acct_audit", apikey.Sandbox, events, events[len(events)-1].Seq, events[len(events)-1].Hash); err != nil {
		t.Fatal(err)
	}
	if err := client.VerifyAuditChain(views); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyAuditChain(t *testing.T) {
	_, views := serverEvents(t, 12)
	chain := func() []client.AuditEvent {
		c := append([]client.AuditEvent(nil), views...)
		rand.Shuffle(len(c), func(i, j int) { c[i], c[j] = c[j], c[i] }) // any order
		return c
	}
	if err := client.VerifyAuditChain(chain()); err != nil {
		t.Fatalf("intact chain: %v", err)
	}
	if err := client.VerifyAuditChain(nil); err != nil {
		t.Fatalf("no events: %v", err)
	}
	bySeq := func(c []client.AuditEvent, seq int) *client.AuditEvent {
		for i := range c {
			if c[i].Seq == seq {
				return &c[i]
			}
		}
		t.Fatalf("no seq %d", seq)
		return nil
	}
	without := func(c []client.AuditEvent, seq int) []client.AuditEvent {
		var out []client.AuditEvent
		for _, e := range c {
			if e.Seq != seq {
				out = append(out, e)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		break_ func([]client.AuditEvent) []client.AuditEvent
		seq    int
	}{
		{"edited status", func(c []client.AuditEvent) []client.AuditEvent {
			bySeq(c, 7).Changes["status"] = "ACTIVE"
			return c
		}, 7},
		{"edited time", func(c []client.AuditEvent) []client.AuditEvent {
			e := bySeq(c, 5)
			e.CreatedAt = e.CreatedAt.Add(time.Microsecond)
			return c
		}, 5},
		{"edited actor", func(c []client.AuditEvent) []client.AuditEvent { bySeq(c, 3).Actor.ID = "someone else"; return c }, 3},
		{"edited hash", func(c []client.AuditEvent) []client.AuditEvent { bySeq(c, 4).Hash = "00"; return c }, 4},
		{"rehashed after an edit", func(c []client.AuditEvent) []client.AuditEvent {
			e := bySeq(c, 6)
			e.ClientIP = "198.51.100.1"
			e.Hash, _ = client.AuditEventHash(e) // the next link no longer holds
			return c
		}, 7},
		{"removed in the middle", func(c []client.AuditEvent) []client.AuditEvent { return without(c, 8) }, 8},
		{"removed the oldest", func(c []client.AuditEvent) []client.AuditEvent { return without(c, 1) }, 1},
		{"repeated", func(c []client.AuditEvent) []client.AuditEvent { return append(c, *bySeq(c, 9)) }, 9},
		{"first prev_hash not empty", func(c []client.AuditEvent) []client.AuditEvent { bySeq(c, 1).PrevHash = "ab"; return c }, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := chain()
			for i := range c { // the maps are shared with views: copy what is edited
				ch := map[string]any{}
				for k, v := range c[i].Changes {
					ch[k] = v
				}
				c[i].Changes = ch
			}
			err := client.VerifyAuditChain(tc.break_(c))
			var ce *client.AuditChainError
			if !errors.As(err, &ce) || ce.Seq != tc.seq || ce.AccountID != "acct_audit" || ce.Mode != "test" {
				t.Fatalf("%v, want a break at seq %d", err, tc.seq)
			}
		})
	}
	// Removing the newest events leaves a chain that holds: documented.
	if err := client.VerifyAuditChain(without(chain(), 12)); err != nil {
		t.Fatalf("truncated chain: %v", err)
	}
	// Events of two chains are a mistake of the caller, not a broken chain.
	mixed := chain()
	mixed[0].AccountID = "acct_other"
	var ce *client.AuditChainError
	if err := client.VerifyAuditChain(mixed); err == nil || errors.As(err, &ce) {
		t.Fatalf("mixed chains: %v", err)
	}
}
