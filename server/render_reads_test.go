package server

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// renderStrings are the strings the filler picks from: plain ones, and ones
// encoding/json escapes (HTML characters, quotes, controls, U+2028, invalid
// UTF-8).
var renderStrings = []string{
	"", "acct_demo", "key_4d8PqZyT6vWb2mK9xR3sN7fH", "sk_test_…abcd", "é ✓ 日本", "a <b> & \"c\"", `back\slash`,
	"line\nfeed\t\x01\x1f", "\u2028\u2029", "\xff\xfe", "ok\x7f", "payment", "refund", "read", "create",
}

// fill gives every field of v a random value, for the types the read
// answers hold; a kind it does not know fails the test, so that a new kind
// of field is noticed here.
func fill(t *testing.T, v reflect.Value, r *rand.Rand, depth int) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(renderStrings[r.IntN(len(renderStrings))])
	case reflect.Bool:
		v.SetBool(r.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(r.Int64N(1<<40) - 1<<39)
	case reflect.Pointer:
		if r.IntN(4) == 0 {
			return // nil
		}
		p := reflect.New(v.Type().Elem())
		fill(t, p.Elem(), r, depth)
		v.Set(p)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
			ts := time.Unix(r.Int64N(4e9), r.Int64N(1e9)*int64(r.IntN(2))).In(zones[r.IntN(len(zones))])
			if r.IntN(50) == 0 {
				ts = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // refused by MarshalJSON
			}
			v.Set(reflect.ValueOf(ts))
			return
		}
		for i := range v.NumField() {
			if !v.Type().Field(i).IsExported() {
				t.Fatalf("fill: %s has an unexported field %s", v.Type(), v.Type().Field(i).Name)
			}
			fill(t, v.Field(i), r, depth)
		}
	case reflect.Map:
		if r.IntN(8) == 0 {
			return // nil
		}
		m := reflect.MakeMap(v.Type())
		for range r.IntN(5) {
			k := reflect.New(v.Type().Key()).Elem()
			fill(t, k, r, depth)
			e := reflect.New(v.Type().Elem()).Elem()
			fill(t, e, r, depth+1)
			m.SetMapIndex(k, e)
		}
		v.Set(m)
	case reflect.Slice:
		if r.IntN(8) == 0 {
			return // nil
		}
		n := r.IntN(4)
		s := reflect.MakeSlice(v.Type(), n, n)
		for i := range n {
			fill(t, s.Index(i), r, depth+1)
		}
		v.Set(s)
	case reflect.Interface: // an audit event's change: what auditrow.Decode gives, and a float now and then
		var x any
		switch k := r.IntN(9); {
		case k == 0:
			x = nil
		case k == 1:
			x = r.IntN(2) == 0
		case k == 2:
			x = json.Number([]string{"0", "-12", "9223372036854775807", "18446744073709551615"}[r.IntN(4)])
		case k == 3 && r.IntN(10) == 0:
			x = 2.5
		case k == 4 && depth < 3:
			m := map[string]any{}
			fill(t, reflect.ValueOf(&m).Elem(), r, depth+1)
			x = m
		case k == 5 && depth < 3:
			var l []any
			fill(t, reflect.ValueOf(&l).Elem(), r, depth+1)
			x = l
		default:
			x = renderStrings[r.IntN(len(renderStrings))]
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		t.Fatalf("fill: no value for a %s", v.Type())
	}
}

// pageShape gives a filled page of events what the handler always writes:
// the constants, has_more as the cursor says, events as toAuditEvent makes
// them (changes never null).
func pageShape(p *api.AuditEventListEnvelope) {
	p.Message, p.Success, p.Data.Object = "success", true, api.AuditEventListObjectList
	if p.Data.NextCursor != nil && *p.Data.NextCursor == "" {
		p.Data.NextCursor = nil
	}
	p.Data.HasMore = p.Data.NextCursor != nil
	if p.Data.Data == nil {
		p.Data.Data = []api.AuditEvent{}
	}
	for i := range p.Data.Data {
		e := &p.Data.Data[i]
		e.Object = api.AuditEventObjectAuditEvent
		if e.Changes == nil {
			e.Changes = map[string]any{}
		}
	}
}

// eventPage is the handler's response for a page shaped by pageShape: its
// events as a store's page gives them (the changes' JSON, encoding/json's
// bytes of the map), now and then as maps (an event not read by a page) or
// with no changes at all.
func eventPage(t *testing.T, p *api.AuditEventListEnvelope, r *rand.Rand) *listEventsResponse {
	t.Helper()
	out := &listEventsResponse{events: []audit.Event{}}
	if p.Data.NextCursor != nil {
		out.next = *p.Data.NextCursor
	}
	for _, e := range p.Data.Data {
		ev := audit.Event{
			ID: e.Id, Seq: int64(e.Seq), AccountID: e.AccountId, Mode: apikey.Mode(e.Mode), Action: string(e.Action),
			KeyID: e.KeyId, Actor: apikey.Actor{Kind: string(e.Actor.Kind), ID: e.Actor.Id, RequestID: e.Actor.RequestId},
			ClientIP: e.ClientIp, CreatedAt: e.CreatedAt, PrevHash: e.PrevHash, Hash: e.Hash,
		}
		switch k := r.IntN(10); {
		case k == 0:
			ev.Changes = e.Changes
		case k == 1 && len(e.Changes) == 0: // nil changes: {}
		default:
			b, err := json.Marshal(e.Changes)
			if err != nil {
				t.Fatal(err)
			}
			ev.ChangesJSON = string(b)
		}
		out.events = append(out.events, ev)
	}
	return out
}

// TestReadRenderingIsEncodingJSON: the read answers write what the generated
// responses' encoding/json writes, byte for byte, for values that fill every
// field (escapes, invalid UTF-8, nulls, offsets, floats in changes, times
// MarshalJSON refuses); an error sends nothing, so that the error envelope
// is the answer.
func TestReadRenderingIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test values, seeded to be repeatable
	const runs = 3000
	refused := 0
	for i := range runs {
		var (
			view   api.ApiKeyViewEnvelope
			keys   api.ApiKeyListEnvelope
			events api.AuditEventListEnvelope
		)
		for _, tc := range []struct {
			body  any
			visit func(w http.ResponseWriter) error
		}{
			{&view, func(w http.ResponseWriter) error { return (&getKeyResponse{body: view}).VisitGetApiKeyResponse(w) }},
			{&keys, func(w http.ResponseWriter) error { return (&listKeysResponse{body: keys}).VisitListApiKeysResponse(w) }},
			{&events, func(w http.ResponseWriter) error {
				return eventPage(t, &events, r).VisitListAuditEventsResponse(w)
			}},
		} {
			fill(t, reflect.ValueOf(tc.body).Elem(), r, 0)
			if tc.body == &events {
				pageShape(&events)
			}
			var want bytes.Buffer
			werr := json.NewEncoder(&want).Encode(tc.body)
			rec := httptest.NewRecorder()
			err := tc.visit(rec)
			if (err != nil) != (werr != nil) {
				t.Fatalf("run %d: error %v, encoding/json's %v", i, err, werr)
			}
			if err != nil {
				if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
					t.Fatalf("run %d: %v, yet sent %v %q", i, err, rec.Header(), rec.Body)
				}
				refused++
				continue
			}
			if got := rec.Body.String(); got != want.String() {
				t.Fatalf("run %d:\n got %s\nwant %s", i, got, want.String())
			}
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("run %d: %d %v", i, rec.Code, rec.Header())
			}
		}
	}
	if refused == 0 || refused == 3*runs {
		t.Fatalf("%d of %d answers refused: the values do not cover both", refused, 3*runs)
	}
}
