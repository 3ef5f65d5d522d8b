package auditrow

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestMarshalIsJSONMarshal: marshal writes json.Marshal's bytes for every
// value direct and Decode return (the stores hash them).
func TestMarshalIsJSONMarshal(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // reproducible test values, not a secret
	pieces := []string{"a", "Z", "0", " ", "key_", "-", "é", "日本", "\u2028", "\u2029", "<", ">", "&", `"`, `\`,
		"\n", "\t", "\x00", "\x1f", "\x7f", "\xff", "\xe2\x80", "🙂", "\ufffd", "/", "'"}
	str := func() string {
		var b []byte
		for range rng.IntN(6) {
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
			return rng.Float64() * 1e6
		case n == 4 && depth < 3:
			var a []any
			if rng.IntN(5) > 0 {
				a = []any{}
			}
			for range rng.IntN(4) {
				a = append(a, value(depth+1))
			}
			return a
		case n == 5 && depth < 3:
			var m map[string]any
			if rng.IntN(5) > 0 {
				m = map[string]any{}
			}
			for range rng.IntN(5) {
				if m == nil {
					m = map[string]any{}
				}
				m[str()] = value(depth + 1)
			}
			return m
		default:
			return str()
		}
	}
	for i := range 20000 {
		v := value(0)
		want, werr := json.Marshal(v)
		got, gerr := marshal(v)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("#%d %#v: marshal = %q, %v; json.Marshal = %q, %v", i, v, got, gerr, want, werr)
		}
	}
	for _, n := range []json.Number{"0", "-0", "12", "-12", "007", "1.5", "1e3", "", "-"} {
		want, werr := json.Marshal(n)
		got, gerr := marshal(n)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Errorf("%q: marshal = %q, %v; json.Marshal = %q, %v", n, got, gerr, want, werr)
		}
	}
}
