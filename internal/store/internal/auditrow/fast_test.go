package auditrow

import (
	"reflect"
	"strings"
	"testing"
)

var decodeSeeds = []string{
	`{}`, ` { } `, `{"a":1}`, `{"a": [1, -0, 0, -12, "x", true, false, null, {}, []]}`,
	`{"name":"seed 1","type":"SECRET","status":"ACTIVE","managed":false,"expires_at":null,"key_hint":"sk_test_…abcd","metadata":{"team":"bench"},"permissions":{"payment":["create","read"],"refund":["read"]}}`,
	`{"key_hint": "sk_test_…abcd", "metadata": {"team": "bench"}, "permissions": {"refund": ["read"], "payment": ["create", "read"]}}`,
	`{"a":9223372036854775807,"b":-9223372036854775808,"c":18446744073709551615}`,
	`{"a":18446744073709551616}`, `{"a":-9223372036854775809}`, `{"a":1.5}`, `{"a":1e21}`, `{"a":1E2}`,
	`{"a":01}`, `{"a":-}`, `{"a":-01}`, `{"a":"\u00e9"}`, `{"a":"\n"}`, "{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}",
	`{"a":"b","a":"c"}`, `{"a":tru}`, `{"a":nul}`, `{"a":[1,]}`, `{"a":1,}`, `{"a" 1}`, `{"a":1} x`, `{} {}`,
	`null`, `[]`, ``, `{`, `{"a":[`, `{"a":{"b":{"c":[[[]]]}}}`, `{1:2}`,
	`{"d":` + strings.Repeat(`[`, 70) + strings.Repeat(`]`, 70) + `}`,
}

// FuzzDecode: what fastDecode accepts, decodeJSON reads alike; Decode and
// DecodeString always answer as decodeJSON.
func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		want, werr := decodeJSON([]byte(text))
		if got, ok := fastDecode(text); ok && (werr != nil || !reflect.DeepEqual(got, want)) {
			t.Fatalf("fastDecode(%q) = %#v; decodeJSON: %#v, %v", text, got, want, werr)
		}
		for name, decode := range map[string]func(string) (map[string]any, error){
			"Decode": func(s string) (map[string]any, error) { return Decode([]byte(s)) }, "DecodeString": DecodeString,
		} {
			if got, err := decode(text); (err != nil) != (werr != nil) || !reflect.DeepEqual(got, want) {
				t.Fatalf("%s(%q) = %#v, %v; decodeJSON: %#v, %v", name, text, got, err, want, werr)
			}
		}
	})
}

// TestFastDecodeTakesWhatTheStoresWrite: the changes the use cases record,
// as SQLite keeps them (Encode's text) and as jsonb prints them, are read
// without encoding/json.
func TestFastDecodeTakesWhatTheStoresWrite(t *testing.T) {
	b, _, err := Encode(map[string]any{
		"name": "Checkout backend", "type": "SECRET", "status": "ACTIVE", "managed": false, "expires_at": nil,
		"key_hint": "sk_test_…abcd", "metadata": map[string]string{"team": "bench"}, "n": -3,
		"permissions": map[string][]string{"payment": {"create", "read"}, "refund": {"read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), decodeSeeds[5]} {
		if _, ok := fastDecode(s); !ok {
			t.Errorf("fastDecode(%s) declined", s)
		}
	}
}
