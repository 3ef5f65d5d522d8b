package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// TestSealEncodedIsSeal: sealing with the changes' encoding reused gives the
// hash that encoding them again gives (and that Verify recomputes).
func TestSealEncodedIsSeal(t *testing.T) {
	for _, changes := range []map[string]any{nil, {}, {"name": "a <b> & ✓", "deleted": true, "n": json.Number("12"),
		"permissions": map[string]any{"payment": []any{"create", "read"}}, "expires_at": nil}} {
		e := Event{ID: "evt_1", AccountID: "acct_1", Mode: apikey.Live, Action: Create, KeyID: "key_1",
			Actor: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req_1"}, ClientIP: "192.0.2.1",
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC), Changes: changes}
		enc := e
		m := changes
		if m == nil {
			m = map[string]any{}
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Seal(3, "abc"); err != nil {
			t.Fatal(err)
		}
		if err := enc.SealEncoded(3, "abc", b); err != nil {
			t.Fatal(err)
		}
		if enc.Hash != e.Hash || enc.Seq != 4 {
			t.Errorf("%v: SealEncoded hash %s (seq %d), Seal %s", changes, enc.Hash, enc.Seq, e.Hash)
		}
		if err := Verify("acct_1", apikey.Live, nil, 0, ""); err != nil {
			t.Fatal(err)
		}
		first := enc
		if err := first.SealEncoded(0, "", b); err != nil {
			t.Fatal(err)
		}
		if err := Verify("acct_1", apikey.Live, []Event{first}, 1, first.Hash); err != nil {
			t.Errorf("Verify of an event sealed with its encoding: %v", err)
		}
	}
}

// TestSealParts: the parts SealParts returns, around the head's seq and
// hash, hash to what Seal computes (a store that seals in SQL writes events
// that Verify accepts).
func TestSealParts(t *testing.T) {
	for _, tc := range []struct {
		id       string
		seq      int64
		head     string
		changes  map[string]any
		clientIP string
	}{
		{"evt_1", 0, "", nil, ""},
		{`evt_"seq":0,`, 41, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", map[string]any{"name": `a ,"seq":0, <b>`}, "192.0.2.1"},
		{"evt_3", 1<<62 - 1, "abc", map[string]any{"n": json.Number("12"), "expires_at": nil}, "2001:db8::1"},
	} {
		e := Event{ID: tc.id, AccountID: "acct_1", Mode: apikey.Live, Action: Create, KeyID: "key_1",
			Actor: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req_1"}, ClientIP: tc.clientIP,
			CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.FixedZone("x", 3600)), Changes: tc.changes}
		parts := e
		prefix, middle, err := parts.SealParts(nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Seal(tc.seq, tc.head); err != nil {
			t.Fatal(err)
		}
		canon, err := e.Canonical()
		if err != nil {
			t.Fatal(err)
		}
		got := string(prefix) + strconv.FormatInt(tc.seq+1, 10) + string(middle) + tc.head + `"}`
		if got != string(canon) {
			t.Errorf("%s: parts give\n%s\nwant\n%s", tc.id, got, canon)
		}
		sum := sha256.Sum256([]byte(got))
		if hex.EncodeToString(sum[:]) != e.Hash {
			t.Errorf("%s: hash of the parts differs from Seal's", tc.id)
		}
		if !parts.CreatedAt.Equal(e.CreatedAt) || parts.CreatedAt.Location() != time.UTC {
			t.Errorf("%s: SealParts left CreatedAt %v, want %v", tc.id, parts.CreatedAt, e.CreatedAt)
		}
	}
}
