package sqlite

import (
	"encoding/json"
	"reflect"
	"testing"
)

var mapSeeds = []string{
	`{}`, ` { } `, `{"payment":["create","read"],"refund":["read"]}`, `{"a": ["x", "verify"], "b": []}`,
	`{"team":"bench","":"empty"}`, `{"a":"b","a":"c"}`, `{"a":["x"],"a":[]}`, `{"a":"\u00e9"}`, `{"a":"é ✓ <&>"}`,
	`null`, `{"a":null}`, `{"a":[null]}`, `{"a":1}`, `{"a":["x",]}`, `{"a":"b",}`, `{"a" "b"}`, `{"a":"b"} x`,
	"{\"a\":\"\xff\"}", "{\"a\":\"\x01\"}", `{"a":"b"`, `[]`, ``, `{"a":["x"]`, `{"a":["x" "y"]}`,
}

// FuzzDecodeMaps: what the fast readers accept, json.Unmarshal reads alike;
// decodePermissions and decodeMetadata always answer as json.Unmarshal.
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
		if got, err := decodePermissions(text); (err != nil) != (errP != nil) || !reflect.DeepEqual(got, wantP) {
			t.Fatalf("decodePermissions(%q) = %#v, %v; json: %#v, %v", text, got, err, wantP, errP)
		}
		var wantM map[string]string
		errM := json.Unmarshal([]byte(text), &wantM)
		if got, ok := fastMetadata(text); ok && (errM != nil || !reflect.DeepEqual(got, wantM)) {
			t.Fatalf("fastMetadata(%q) = %#v; json: %#v, %v", text, got, wantM, errM)
		}
		if got, err := decodeMetadata(text); (err != nil) != (errM != nil) || !reflect.DeepEqual(got, wantM) {
			t.Fatalf("decodeMetadata(%q) = %#v, %v; json: %#v, %v", text, got, err, wantM, errM)
		}
	})
}

// TestFastMapsTakeWhatTheStoreWrites: the text encodeMaps and the migrations
// write is read without encoding/json.
func TestFastMapsTakeWhatTheStoreWrites(t *testing.T) {
	for _, s := range []string{`{}`, `{"payment":["create","read"],"refund":["read"]}`, `{"account:api:key":["create","verify"],"x":[]}`} {
		if _, ok := fastPermissions(s); !ok {
			t.Errorf("fastPermissions(%s) declined", s)
		}
	}
	for _, s := range []string{`{}`, `{"team":"bench"}`} {
		if _, ok := fastMetadata(s); !ok {
			t.Errorf("fastMetadata(%s) declined", s)
		}
	}
}
