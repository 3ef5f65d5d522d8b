package server

import (
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// BenchmarkEventPage is the writing of a page of 100 audit events (a
// create's each, as a store's page reads them) into the pooled buffer.
func BenchmarkEventPage(b *testing.B) {
	now := time.Now().UTC().Truncate(time.Microsecond)
	events := make([]audit.Event, 100)
	for i := range events {
		events[i] = audit.Event{
			ID: fmt.Sprintf("evt_%024d", i), Seq: int64(120 - i), AccountID: "acct_demo", Mode: apikey.Sandbox,
			Action: audit.Create, KeyID: fmt.Sprintf("key_%024d", i),
			Actor:    apikey.Actor{Kind: apikey.ActorKey, ID: "key_4d8PqZyT6vWb2mK9xR3sN7fH", RequestID: "req_0123456789abcdef"},
			ClientIP: "192.0.2.1", CreatedAt: now,
			ChangesJSON: `{"expires_at":null,"key_hint":"sk_test_…abcd","managed":false,"metadata":{"team":"bench"},` +
				`"name":"listed 1","permissions":{"payment":["create","read"],"refund":["read"]},"status":"ACTIVE","type":"SECRET"}`,
			PrevHash: "5f2b0c3a9d1e4f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c",
			Hash:     "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90",
		}
	}
	buf := make([]byte, 0, 64<<10)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = appendEventPage(buf[:0], events, "cursor"); err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}
