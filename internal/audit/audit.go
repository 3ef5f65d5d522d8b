// Package audit holds the record of changes to keys and its hash chain.
//
// Every change to a key writes one Event in the same transaction as the
// change. Events are chained per account and mode: each carries the hash of
// the one before it, and its own hash covers every other field, so a row
// edited or deleted in the database breaks the chain (Verify). The encoding
// hashed is the event's public JSON form (Canonical), so a client can check
// the chain from what the API returns, without trusting the server's store.
package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	json "github.com/goccy/go-json"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// Actions, as the spec's AuditAction lists them.
const (
	Create     = "create"
	Regenerate = "regenerate"
	Update     = "update"
	Disable    = "disable"
	Enable     = "enable"
	Delete     = "delete"
	Bootstrap  = "bootstrap"
)

// Event is one change to a key. Changes maps each changed field to its new
// value; it never holds a secret or a hash of one.
type Event struct {
	ID        string
	Seq       int64
	AccountID string
	Mode      apikey.Mode
	Action    string
	KeyID     string
	Actor     apikey.Actor
	ClientIP  string
	CreatedAt time.Time
	Changes   map[string]any
	PrevHash  string
	Hash      string

	// ChangesJSON is Changes as a page of events (ListAuditEvents) reads
	// it: the JSON of the map, json.Marshal's bytes (keys sorted, HTML
	// characters escaped), which that read fills instead of Changes, so
	// that an answer writes the bytes as they are rather than decoding the
	// map and encoding it again. "" where Changes is the map; the hash
	// covers either the same way.
	ChangesJSON string
}

// canonical is the hashed form: the event's fields in a fixed order, times
// in UTC to the microsecond (what every store keeps), maps with sorted keys
// (encoding/json sorts them).
type canonical struct {
	ID        string         `json:"id"`
	Seq       int64          `json:"seq"`
	AccountID string         `json:"account_id"`
	Mode      string         `json:"mode"`
	Action    string         `json:"action"`
	KeyID     string         `json:"key_id"`
	Actor     canonicalActor `json:"actor"`
	ClientIP  string         `json:"client_ip"`
	CreatedAt string         `json:"created_at"`
	Changes   any            `json:"changes"` // the map, or its encoding (json.RawMessage)
	PrevHash  string         `json:"prev_hash"`
}

type canonicalActor struct {
	Kind      string `json:"kind"`
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
}

// Canonical returns the bytes an event's hash covers.
func (e *Event) Canonical() ([]byte, error) {
	return e.canonical(nil)
}

// canonical is Canonical with the changes' encoding, when the caller has it
// (json.Marshal's of e.Changes): reused rather than encoded again.
//
// The bytes are encoding/json's Marshal of the canonical struct (the
// definition: TestCanonicalIsEncodingJSON holds them to it on random
// events), written by goccy/go-json: encoding/json's reflection over the
// struct ran on every append's hash, on the writer's goroutine. go-json
// compacts a json.RawMessage and escapes <, >, &, U+2028 and U+2029 in it as
// encoding/json does, and refuses one that is not valid JSON.
func (e *Event) canonical(encoded []byte) ([]byte, error) {
	var changes any = e.Changes
	switch {
	case encoded != nil:
		changes = json.RawMessage(encoded)
	case e.Changes == nil && e.ChangesJSON != "":
		changes = json.RawMessage(e.ChangesJSON)
	case e.Changes == nil:
		changes = map[string]any{}
	}
	return json.Marshal(canonical{
		ID: e.ID, Seq: e.Seq, AccountID: e.AccountID, Mode: string(e.Mode), Action: e.Action, KeyID: e.KeyID,
		Actor:    canonicalActor{Kind: e.Actor.Kind, ID: e.Actor.ID, RequestID: e.Actor.RequestID},
		ClientIP: e.ClientIP, CreatedAt: e.CreatedAt.UTC().Format(time.RFC3339Nano), Changes: changes, PrevHash: e.PrevHash,
	})
}

// Seal places e after the chain's head (seq, hash; 0 and "" for an empty
// chain) and computes its hash. CreatedAt is truncated to the microsecond
// first, so that the stored event hashes the same as the sealed one.
func (e *Event) Seal(headSeq int64, headHash string) error {
	return e.SealEncoded(headSeq, headHash, nil)
}

// SealEncoded is Seal for a store that has encoded e.Changes already (the
// text it keeps, as json.Marshal writes e.Changes): the hash reuses it
// instead of encoding the changes a second time. nil encodes them.
func (e *Event) SealEncoded(headSeq int64, headHash string, changes []byte) error {
	e.Seq, e.PrevHash = headSeq+1, headHash
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	h, err := e.hash(changes)
	if err != nil {
		return err
	}
	e.Hash = h
	return nil
}

// SealParts is Seal for a store that reads the chain's head only where it
// writes the event (PostgreSQL, in the statement that moves the head: no
// round trip to read it first). It truncates CreatedAt as Seal does and
// returns e's canonical encoding around the two values it cannot know yet:
// for the head (seq, hash), e's hash is the hex SHA-256 of
//
//	prefix + decimal(seq+1) + middle + hash + `"}`
//
// byte for byte what Seal hashes (TestSealParts); the store then sets e.Seq,
// e.PrevHash and e.Hash to what it wrote. changes is as for SealEncoded.
func (e *Event) SealParts(changes []byte) (prefix, middle []byte, err error) {
	e.CreatedAt = e.CreatedAt.UTC().Truncate(time.Microsecond)
	c := *e
	c.Seq, c.PrevHash = 0, ""
	b, err := c.canonical(changes)
	if err != nil {
		return nil, nil, fmt.Errorf("audit: encode event %s: %w", e.ID, err)
	}
	// The first "seq" key: every string before it is encoded with its quotes
	// escaped, so the id cannot hold this text.
	const seqKey, tail = `,"seq":0,`, `"prev_hash":""}`
	i := bytes.Index(b, []byte(seqKey))
	if i < 0 || !bytes.HasSuffix(b, []byte(tail)) {
		return nil, nil, fmt.Errorf("audit: event %s: unexpected canonical form", e.ID)
	}
	cut := i + len(seqKey) - len(`0,`)
	return b[:cut:cut], b[cut+1 : len(b)-len(`"}`)], nil
}

func (e *Event) hash(changes []byte) (string, error) {
	b, err := e.canonical(changes)
	if err != nil {
		return "", fmt.Errorf("audit: encode event %s: %w", e.ID, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// BrokenLink says where a chain stops holding together.
type BrokenLink struct {
	AccountID string
	Mode      apikey.Mode
	Seq       int64 // the first event that does not hold (or the missing one)
	Reason    string
}

func (b *BrokenLink) Error() string {
	return fmt.Sprintf("audit chain of account %s (%s) broken at seq %d: %s", b.AccountID, b.Mode, b.Seq, b.Reason)
}

// Verify checks one account's chain in one mode: events in ascending seq
// from 1, each hash recomputed, each prev_hash the previous hash, and the
// last one equal to the head the account records (so removing the newest
// events is detected too). It returns nil or a *BrokenLink.
func Verify(accountID string, mode apikey.Mode, events []Event, headSeq int64, headHash string) error {
	broken := func(seq int64, format string, args ...any) error {
		return &BrokenLink{AccountID: accountID, Mode: mode, Seq: seq, Reason: fmt.Sprintf(format, args...)}
	}
	prev := ""
	for i := range events {
		e := &events[i]
		want := int64(i + 1)
		if e.Seq != want {
			return broken(want, "event %d is missing (found seq %d)", want, e.Seq)
		}
		if e.PrevHash != prev {
			return broken(e.Seq, "prev_hash does not match the hash of event %d", want-1)
		}
		h, err := e.hash(nil)
		if err != nil {
			return err
		}
		if h != e.Hash {
			return broken(e.Seq, "the event was changed after it was written (hash mismatch)")
		}
		prev = e.Hash
	}
	last := int64(len(events))
	if last != headSeq || prev != headHash {
		return broken(last+1, "the account records %d events ending in %.12s…; the chain has %d", headSeq, headHash, last)
	}
	return nil
}
