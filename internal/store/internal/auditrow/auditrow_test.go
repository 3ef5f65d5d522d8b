package auditrow

import (
	"bytes"
	"encoding/json"
	"math"
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
