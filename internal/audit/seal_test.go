package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math"
	"math/rand/v2"
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
		read := first // as a page reads it: the changes' JSON, no map
		read.Changes, read.ChangesJSON = nil, string(b)
		if err := Verify("acct_1", apikey.Live, []Event{read}, 1, first.Hash); err != nil {
			t.Errorf("Verify of an event with ChangesJSON: %v", err)
		}
		read.ChangesJSON = `{"x":1}`
		if Verify("acct_1", apikey.Live, []Event{read}, 1, first.Hash) == nil {
			t.Error("Verify of an event with other ChangesJSON passed")
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

// TestCanonicalIsEncodingJSON: the canonical form (goccy/go-json) is
// encoding/json's Marshal of the canonical struct, byte for byte, for any
// event and any encoding of its changes or changes map, and each refuses
// what the other refuses (the hash chain is defined by encoding/json's bytes).
func TestCanonicalIsEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // reproducible test values, not a secret
	pieces := []string{"a", "Z", "0", " ", "key_", "-", "é", "日本", "\u2028", "\u2029", "<", ">", "&", `"`, `\`, "\n", "\t",
		"\x00", "\x1f", "\x7f", "\xff", "\xe2\x80", "🙂", "\ufffd", ":", "/"}
	str := func() string {
		var b []byte
		for range rng.IntN(5) {
			b = append(b, pieces[rng.IntN(len(pieces))]...)
		}
		return string(b)
	}
	var value func(depth int) any
	value = func(depth int) any {
		switch n := rng.IntN(9); {
		case n == 0:
			return nil
		case n == 1:
			return rng.IntN(2) == 0
		case n == 2:
			return json.Number(strconv.FormatInt(rng.Int64N(1<<40)-1<<39, 10))
		case n == 3:
			return rng.NormFloat64() * math.Pow(10, float64(rng.IntN(60)-30))
		case n == 4 && depth < 3:
			a := []any{}
			for range rng.IntN(4) {
				a = append(a, value(depth+1))
			}
			return a
		case n == 5 && depth < 3:
			m := map[string]any{}
			for range rng.IntN(5) {
				m[str()] = value(depth + 1)
			}
			return m
		default:
			return str()
		}
	}
	encodings := []string{`{}`, `{"a":1}`, `{"name":"bench 1","permissions":{"payment":["create","read"]},"n":null}`,
		`{ "a": 1 }`, `{"a":"<"}`, `{"a":"\u003c"}`, `{"a":"x\"y\\"}`, "{\"a\":\"\u2028\"}", `{"a":"\u2028"}`,
		`{"a":[1,2,{"b":true}]}`, `{"a":`, `[1]`, `"s"`, `{"a":1} `, "{\"a\":\"\t\"}", `{"é":"日本"}`, "{\"a\":\"\xff\"}",
		"\n{\"a\" :\t[ 1 , 2 ]}\r\n", `{"a":1e400}`, `{"a":01}`, `{"a":-0.0E+5}`, `{"a":tru}`, ``, `{"a":"<&>"}`, `{"b":1,"a":2}`}
	for i := range 20000 {
		e := Event{ID: str(), Seq: rng.Int64N(1 << 40), AccountID: str(), Mode: apikey.Mode(str()), Action: str(), KeyID: str(),
			Actor:    apikey.Actor{Kind: str(), ID: str(), RequestID: str()},
			ClientIP: str(), CreatedAt: time.Unix(rng.Int64N(1<<34), rng.Int64N(1e9)).In(time.FixedZone("x", 3600)), PrevHash: str()}
		if i%3 == 0 {
			e = Event{ID: "evt_1", Seq: 7, AccountID: "acct_1", Mode: apikey.Live, Action: Create, KeyID: "key_1",
				Actor: apikey.Actor{Kind: apikey.ActorKey, ID: "key_0", RequestID: "req_1"}, ClientIP: "192.0.2.1",
				CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6789, time.UTC), PrevHash: "abc"}
		}
		var enc []byte
		if i%2 == 0 {
			enc = []byte(encodings[rng.IntN(len(encodings))])
		} else if rng.IntN(4) == 0 { // as a page reads it
			e.ChangesJSON = encodings[rng.IntN(len(encodings))]
		} else if rng.IntN(5) > 0 { // else nil changes, encoded as {}
			e.Changes = map[string]any{}
			for range rng.IntN(6) {
				e.Changes[str()] = value(1)
			}
		}
		want, werr := encodingJSONCanonical(&e, enc)
		got, gerr := e.canonical(enc)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("#%d %+v, changes %q:\ncanonical     %s, %v\nencoding/json %s, %v", i, e, enc, got, gerr, want, werr)
		}
	}
}

// encodingJSONCanonical is the canonical form's definition: encoding/json's
// Marshal of the canonical struct.
func encodingJSONCanonical(e *Event, encoded []byte) ([]byte, error) {
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
