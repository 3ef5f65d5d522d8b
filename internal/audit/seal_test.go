package audit

import (
	"encoding/json"
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
