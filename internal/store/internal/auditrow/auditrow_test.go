package auditrow

import (
	"bytes"
	"encoding/json"
	"math"
	"reflect"
	"strings"
	"testing"
)

// TestRoundTrip: what Encode seals encodes, after Decode of the stored text
// or of jsonb's reformatting of it, to the same bytes.
func TestRoundTrip(t *testing.T) {
	in := map[string]any{
		"name":     "a <b> & \"c\" ✓",
		"managed":  true,
		"deleted":  false,
		"gone":     nil,
		"list":     []any{"x", 1, 2.5, []string{"y"}, map[string]int{"z": -3}},
		"metadata": map[string]string{"k": "v", "": "empty"},
		"ints":     []any{int64(math.MaxInt64), uint64(math.MaxUint64), int64(math.MinInt64), 0, 1 << 53},
		"floats":   []any{1e21, 1.5e-7, math.Copysign(0, -1), 0.1, 1e300, 100.0, 1e20},
		"bad":      "\xff\xfe",
	}
	b, norm, err := Encode(in)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := json.Marshal(norm)
	if !bytes.Equal(sealed, b) {
		t.Fatalf("Encode's text %s differs from its value's %s", b, sealed)
	}
	back, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(back); !bytes.Equal(got, b) {
		t.Errorf("after Decode: %s\nwant %s", got, b)
	}
	// As jsonb prints numbers: plain decimals, no exponent, no negative zero.
	jsonb := strings.NewReplacer(`1e+21`, `1000000000000000000000`, `1.5e-7`, `0.00000015`,
		`-0,`, `0,`, `1e+300`, `1`+strings.Repeat("0", 300)).Replace(string(b))
	if jsonb == string(b) || strings.Contains(jsonb, "e+") {
		t.Fatalf("the jsonb form did not reformat the numbers: %s", jsonb)
	}
	back, err = Decode([]byte(jsonb))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := json.Marshal(back); !bytes.Equal(got, b) {
		t.Errorf("after Decode of jsonb's form:\n%s\nwant %s", got, b)
	}
	if _, _, err := Encode(nil); err != nil {
		t.Errorf("Encode(nil): %v", err)
	}
	for _, bad := range []string{`null`, `[]`, `{} {}`, `{`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) succeeded", bad)
		}
	}
}

// TestDirectIsTheRoundTrip: what Encode converts without JSON is what the
// round trip through JSON gives (value and text), and the values it leaves to
// the round trip are the ones whose reading is not plain.
func TestDirectIsTheRoundTrip(t *testing.T) {
	expires := "2030-01-02T03:04:05.123456Z"
	for _, m := range []map[string]any{
		{},
		{"deleted": true},
		{"name": "a <b> & \"c\" ✓ \u2028", "type": "SECRET", "status": "ACTIVE", "managed": false,
			"permissions": map[string][]string{"payment": {"create", "read"}, "refund": {"read"}, "none": {}, "nil": nil},
			"metadata":    map[string]string{"team": "bench", "": "empty"}, "expires_at": nil, "key_hint": "sk_test_…abcd"},
		{"metadata": map[string]string(nil), "permissions": map[string][]string(nil), "list": []string(nil)},
		{"expires_at": expires, "n": 7, "m": int64(-1 << 62), "nested": map[string]any{"l": []any{"x", true, nil, 3}}},
	} {
		norm, ok := direct(m)
		if !ok {
			t.Errorf("%v: not converted directly", m)
			continue
		}
		b, err := json.Marshal(norm)
		if err != nil {
			t.Fatal(err)
		}
		wantB, wantNorm, err := roundTrip(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, wantB) || !reflect.DeepEqual(norm, wantNorm) {
			t.Errorf("direct %s %#v\nround trip %s %#v", b, norm, wantB, wantNorm)
		}
		if gotB, gotNorm, _ := Encode(m); !bytes.Equal(gotB, wantB) || !reflect.DeepEqual(gotNorm, wantNorm) {
			t.Errorf("Encode %s, want %s", gotB, wantB)
		}
	}
	for _, v := range []any{"\xff", map[string]string{"\xff": "x"}, map[string][]string{"a": {"\xfe"}}, 1.5,
		[]any{uint64(1)}, map[string]int{"a": 1}, struct{}{}} {
		if _, ok := direct(map[string]any{"v": v}); ok {
			t.Errorf("%#v converted directly; want the round trip", v)
		}
	}
}
