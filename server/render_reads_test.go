package server

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/netip"
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

// TestReadRenderingIsEncodingJSON: a page of audit events writes what the
// generated response's encoding/json writes, byte for byte, for values that
// fill every field (escapes, invalid UTF-8, nulls, offsets, floats in
// changes, times MarshalJSON refuses); an error sends nothing, so that the
// error envelope is the answer. (The key answers: TestKeyRenderingIsEncodingJSON.)
func TestReadRenderingIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test values, seeded to be repeatable
	const runs = 3000
	refused := 0
	for i := range runs {
		var events api.AuditEventListEnvelope
		fill(t, reflect.ValueOf(&events).Elem(), r, 0)
		pageShape(&events)
		var want bytes.Buffer
		werr := json.NewEncoder(&want).Encode(&events)
		refused += sameAnswer(t, fmt.Sprintf("run %d", i), eventPage(t, &events, r).VisitListAuditEventsResponse, want.String(), werr)
	}
	if refused == 0 || refused == runs {
		t.Fatalf("%d of %d answers refused: the values do not cover both", refused, runs)
	}
}

// sameAnswer checks what visit writes against encoding/json's bytes want
// (or its error werr: then nothing may be sent); 1 if refused.
func sameAnswer(t *testing.T, what string, visit func(w http.ResponseWriter) error, want string, werr error) int {
	t.Helper()
	rec := httptest.NewRecorder()
	err := visit(rec)
	if (err != nil) != (werr != nil) {
		t.Fatalf("%s: error %v, encoding/json's %v", what, err, werr)
	}
	if err != nil {
		if rec.Body.Len() != 0 || len(rec.Header()) != 0 {
			t.Fatalf("%s: %v, yet sent %v %q", what, err, rec.Header(), rec.Body)
		}
		return 1
	}
	if got := rec.Body.String(); got != want {
		t.Fatalf("%s:\n got %s\nwant %s", what, got, want)
	}
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%s: %d %v", what, rec.Code, rec.Header())
	}
	return 0
}

// randomKey is a key as a store may give it, every field drawn at random:
// the strings renderStrings' (escapes, invalid UTF-8), times in several
// zones (now and then one MarshalJSON refuses), nil and empty maps and
// lists, credits with and without a due refill.
func randomKey(r *rand.Rand, now time.Time) *apikey.Key {
	str := func() string { return renderStrings[r.IntN(len(renderStrings))] }
	zones := []*time.Location{time.UTC, time.FixedZone("x", 5*3600+30*60), time.FixedZone("y", -7*3600)}
	tm := func() time.Time {
		if r.IntN(200) == 0 {
			return time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // refused by MarshalJSON
		}
		// Around now, so that expiries and grace periods fall on both sides.
		return now.Add(time.Duration(r.Int64N(int64(96*time.Hour))) - 48*time.Hour).
			Truncate(time.Duration(r.IntN(2)) * time.Microsecond).In(zones[r.IntN(len(zones))])
	}
	tp := func() *time.Time {
		if r.IntN(3) == 0 {
			return nil
		}
		t := tm()
		return &t
	}
	k := &apikey.Key{
		ID: str(), AccountID: str(), Name: str(), NameKey: str(), Type: str(), KeyHint: str(),
		SecretHash: []byte(str()), PrevSecretHash: []byte(str()), PrevSecretExpiresAt: tp(),
		Status:  []string{apikey.StatusActive, apikey.StatusInactive, str()}[r.IntN(3)],
		Managed: r.IntN(2) == 0, Deleted: r.IntN(2) == 0, LastUsedAt: tp(), ExpiresAt: tp(),
		CreatedAt: tm(), UpdatedAt: tm(),
		CreatedBy: apikey.Actor{Kind: str(), ID: str(), RequestID: str()},
	}
	if r.IntN(3) > 0 {
		ip := str()
		k.LastUsedIP = &ip
	}
	if r.IntN(6) > 0 {
		k.Metadata = map[string]string{}
		for range r.IntN(5) {
			k.Metadata[str()] = str()
		}
	}
	if r.IntN(6) > 0 {
		k.Permissions = map[string][]string{}
		for range r.IntN(5) {
			var actions []string
			if r.IntN(6) > 0 {
				actions = []string{}
				for range r.IntN(4) {
					actions = append(actions, str())
				}
			}
			k.Permissions[str()] = actions
		}
	}
	for range r.IntN(4) {
		a := netip.AddrFrom4([4]byte{byte(r.IntN(256)), 0, 2, byte(r.IntN(256))})
		if r.IntN(2) == 0 {
			a = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(r.IntN(256))})
		}
		p, _ := a.Prefix(r.IntN(a.BitLen() + 1))
		if r.IntN(20) == 0 {
			p = netip.Prefix{} // invalid
		}
		k.AllowedNetworks = append(k.AllowedNetworks, p)
	}
	if r.IntN(2) == 0 {
		k.RateLimit = &apikey.RateLimit{Limit: r.IntN(2_000_000) - 1, Window: time.Duration(r.Int64N(int64(48 * time.Hour)))}
	}
	if r.IntN(2) == 0 {
		k.Credits = &apikey.Credits{Remaining: r.Int64N(1e12) - 5, RefilledAt: now.Add(-time.Duration(r.Int64N(int64(60 * 24 * time.Hour)))).Truncate(time.Second)}
		switch r.IntN(3) {
		case 1:
			k.Credits.Refill = &apikey.CreditRefill{Amount: r.Int64N(1e12), Interval: apikey.RefillDaily}
		case 2:
			k.Credits.Refill = &apikey.CreditRefill{Amount: r.Int64N(1e12), Interval: apikey.RefillMonthly, Day: 1 + r.IntN(31)}
		}
	}
	return k
}

// TestKeyRenderingIsEncodingJSON: getApiKey's and listApiKeys' answers,
// appended from the keys as read, are encoding/json's bytes of the generated
// envelopes as toAPIKeyView makes them (the path they replaced), for random
// keys (randomKey) and pages of them; a key MarshalJSON refuses sends
// nothing.
func TestKeyRenderingIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // test values, seeded to be repeatable
	now := time.Now().UTC()
	const runs = 5000
	refused := 0
	for i := range runs {
		k := randomKey(r, now)
		var want bytes.Buffer
		werr := json.NewEncoder(&want).Encode(viewEnvelope(k, now))
		refused += sameAnswer(t, fmt.Sprintf("key %d", i), (&getKeyResponse{key: k, now: now}).VisitGetApiKeyResponse, want.String(), werr)
	}
	if refused == 0 || refused == runs {
		t.Fatalf("%d of %d keys refused: the values do not cover both", refused, runs)
	}
	refused = 0
	for i := range runs / 10 {
		page := &listKeysResponse{now: now}
		for range r.IntN(5) {
			page.keys = append(page.keys, randomKey(r, now))
		}
		list := api.ApiKeyList{Object: api.ApiKeyListObjectList, Data: []api.ApiKeyView{}}
		if r.IntN(2) == 0 {
			page.next = renderStrings[1+r.IntN(len(renderStrings)-1)]
			list.NextCursor, list.HasMore = &page.next, true
		}
		for _, k := range page.keys {
			list.Data = append(list.Data, toAPIKeyView(k, now))
		}
		var want bytes.Buffer
		werr := json.NewEncoder(&want).Encode(api.ApiKeyListEnvelope{Message: "success", Success: true, Data: list})
		refused += sameAnswer(t, fmt.Sprintf("page %d", i), page.VisitListApiKeysResponse, want.String(), werr)
	}
	if refused == 0 || refused == runs/10 {
		t.Fatalf("%d of %d pages refused: the values do not cover both", refused, runs/10)
	}
}
