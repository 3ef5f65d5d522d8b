package client

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// auditCanonical is the form an audit event's hash covers: its fields
// but hash in this fixed order, compact JSON as encoding/json writes it
// (object keys of changes sorted, <, > and & escaped), created_at in UTC as
// RFC 3339 with the fraction the server stored (microseconds at most), a
// missing changes object as {}. It mirrors the server's encoding
// (internal/audit, Event.Canonical); a test computes both on the same events.
type auditCanonical struct {
	ID        string         `json:"id"`
	Seq       int64          `json:"seq"`
	AccountID string         `json:"account_id"`
	Mode      string         `json:"mode"`
	Action    string         `json:"action"`
	KeyID     string         `json:"key_id"`
	Actor     auditActor     `json:"actor"`
	ClientIP  string         `json:"client_ip"`
	CreatedAt string         `json:"created_at"`
	Changes   map[string]any `json:"changes"`
	PrevHash  string         `json:"prev_hash"`
}

type auditActor struct {
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
}

// AuditEventHash recomputes an event's hash from its other fields: the
// hex SHA-256 of its canonical encoding. For an event as the API returned
// it, the result equals e.Hash unless the event was changed after it was
// written.
func AuditEventHash(e *AuditEvent) (string, error) {
	changes := e.Changes
	if changes == nil {
		changes = map[string]any{}
	}
	b, err := json.Marshal(auditCanonical{
		ID: e.ID, Seq: int64(e.Seq), AccountID: e.AccountID, Mode: string(e.Mode), Action: string(e.Action), KeyID: e.KeyID,
		Actor:    auditActor{Kind: string(e.Actor.Kind), ID: e.Actor.ID, RequestID: e.Actor.RequestID},
		ClientIP: e.ClientIP, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano), Changes: changes, PrevHash: e.PrevHash,
	})
	if err != nil {
		return "", fmt.Errorf("client: encode audit event %s: %w", e.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// AuditChainError says where an audit chain stops holding together.
type AuditChainError struct {
	// AccountID is the chain's account.
	AccountID string
	// Mode is the chain's mode: "live" or "test".
	Mode string
	// Seq is the first event that does not hold: changed (hash mismatch),
	// not linked to the one before (prev_hash), repeated, or missing.
	Seq int
	// Reason says what does not hold, for people.
	Reason string
}

// Error names the chain, the seq and the reason.
func (e *AuditChainError) Error() string {
	return fmt.Sprintf("hsrcpay: audit chain of account %s (%s) broken at seq %d: %s", e.AccountID, e.Mode, e.Seq, e.Reason)
}

// VerifyAuditChain checks one account's audit chain in one mode from the
// events the API returned (ListAuditEvents without filters), in any order:
// their seqs must run 1, 2, 3, … without a gap or a repeat, each prev_hash
// must be the hash of the event before it ("" for the first), and each hash
// must match the event's fields (AuditEventHash). It returns nil, a
// *AuditChainError naming the first seq that does not hold, or an error for
// events of more than one account or mode. No events verify trivially.
//
// What it cannot see: events removed at the newest end leave a shorter
// chain that still holds together. Only the head the account records on
// the server catches that (`hsrcpay-server audit verify`); keeping the last
// verified head (seq and hash) and checking that a later chain still
// contains it is the client-side defence.
func VerifyAuditChain(events []AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	account, mode := events[0].AccountID, string(events[0].Mode)
	for i := range events {
		if events[i].AccountID != account || string(events[i].Mode) != mode {
			return fmt.Errorf("client: VerifyAuditChain: events of more than one chain (%s/%s and %s/%s)",
				account, mode, events[i].AccountID, events[i].Mode)
		}
	}
	sorted := make([]*AuditEvent, len(events))
	for i := range events {
		sorted[i] = &events[i]
	}
	slices.SortStableFunc(sorted, func(a, b *AuditEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	broken := func(seq int, format string, args ...any) error {
		return &AuditChainError{AccountID: account, Mode: mode, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	prev := ""
	for i, e := range sorted {
		want := i + 1
		switch {
		case e.Seq < want:
			return broken(e.Seq, "seq %d appears more than once", e.Seq)
		case e.Seq > want:
			return broken(want, "event %d is missing (the next one is seq %d)", want, e.Seq)
		case e.PrevHash != prev && want == 1:
			return broken(e.Seq, "the first event's prev_hash is not empty")
		case e.PrevHash != prev:
			return broken(e.Seq, "prev_hash does not match the hash of event %d", want-1)
		}
		h, err := AuditEventHash(e)
		if err != nil {
			return err
		}
		if h != e.Hash {
			return broken(e.Seq, "the event was changed after it was written (hash mismatch)")
		}
		prev = e.Hash
	}
	return nil
}
