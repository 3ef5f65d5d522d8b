package audit

import (
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// BenchmarkSealEncoded is the hash of an append (SealEncoded, the changes
// already encoded by the store): the canonical form written and hashed.
func BenchmarkSealEncoded(b *testing.B) {
	changes := []byte(`{"expires_at":null,"key_hint":"sk_test_…x7Qa","managed":false,"metadata":{"env":"ci","team":"payments"},` +
		`"name":"bench 1","permissions":{"account:api:key":["read"],"payment":["create","read"]},"status":"active","type":"SECRET"}`)
	e := Event{ID: "evt_4d8PqZyT6vWb2mK9xR3sN7fH", AccountID: "acct_demo", Mode: apikey.Sandbox, Action: Create,
		KeyID: "key_4d8PqZyT6vWb2mK9xR3sN7fH", Actor: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req_1"},
		ClientIP: "192.0.2.1", CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6789000, time.UTC)}
	b.ReportAllocs()
	for b.Loop() {
		if err := e.SealEncoded(41, "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", changes); err != nil {
			b.Fatal(err)
		}
	}
}
