package keymaps

import (
	"encoding/json"
	"reflect"
	"testing"
)

var mapSeeds = []string{
	`{}`, ` { } `, `{"payment":["create","read"],"refund":["read"]}`, `{"a": ["x", "verify"], "b": []}`, `{"refund": ["read"], "payment": ["create", "read"]}`,
	`{"team":"bench","":"empty"}`, `{"a":"b","a":"c"}`, `{"a":["x"],"a":[]}`, `{"a":"\u00e9"}`, `{"a":"é ✓ <&>"}`,
	`null`, `{"a":null}`, `{"a":[null]}`, `{"a":1}`, `{"a":["x",]}`, `{"a":"b",}`, `{"a" "b"}`, `{"a":"b"} x`,
	"{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", `{"a":"b"`, `[]`, ``, `{"a":["x"]`, `{"a":["x" "y"]}`,
}

// FuzzDecodeMaps: what the fast readers accept, json.Unmarshal reads alike;
// Permissions and Metadata always answer as json.Unmarshal.
func FuzzDecodeMaps(f *testing.F) {
	for _, s := range mapSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		var wantP map[string][]string
		errP := json.Unmarshal([]byte(text), &wantP)
		if got, ok := fastPermissions(text); ok && (errP != nil || !reflect.DeepEqual(got, wantP)) {
			t.Fatalf("fastPermissions(%q) = %#v; json: %#v, %v", text, got, wantP, errP)
		}
		if got, err := Permissions(text); (err != nil) != (errP != nil) || !reflect.DeepEqual(got, wantP) {
			t.Fatalf("Permissions(%q) = %#v, %v; json: %#v, %v", text, got, err, wantP, errP)
		}
		var wantM map[string]string
		errM := json.Unmarshal([]byte(text), &wantM)
		if got, ok := fastMetadata(text); ok && (errM != nil || !reflect.DeepEqual(got, wantM)) {
			t.Fatalf("fastMetadata(%q) = %#v; json: %#v, %v", text, got, wantM, errM)
		}
		if got, err := Metadata(text); (err != nil) != (errM != nil) || !reflect.DeepEqual(got, wantM) {
			t.Fatalf("Metadata(%q) = %#v, %v; json: %#v, %v", text, got, err, wantM, errM)
		}
	})
}

// TestFastMapsTakeWhatTheStoreWrites: the text the stores and the migrations
// write (json.Marshal's, jsonb's) is read without encoding/json.
func TestFastMapsTakeWhatTheStoreWrites(t *testing.T) {
	for _, s := range []string{`{}`, `{"payment":["create","read"],"refund":["read"]}`, `{"account:api:key":["create","verify"],"x":[]}`,
		`{"refund": ["read"], "payment": ["create", "read"]}`} {
		if _, ok := fastPermissions(s); !ok {
			t.Errorf("fastPermissions(%s) declined", s)
		}
	}
	for _, s := range []string{`{}`, `{"team":"bench"}`, `{"team": "bench", "x": ""}`} {
		if _, ok := fastMetadata(s); !ok {
			t.Errorf("fastMetadata(%s) declined", s)
		}
	}
}
