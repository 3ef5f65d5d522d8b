package auditrow

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"
)

// canonSeeds add jsonb's forms (", ", ": ", keys by length, its escapes) and
// what the walk declines to the decoder's seeds.
var canonSeeds = []string{
	`{"b": 1, "a": 2}`, `{"bb": 1, "a": {"y": [1, 2], "x": null}}`, `{"a": "<>&\u2028\u2029"}`, "{\"a\": \"\u2028 é\"}",
	`{"a": "\"\\\/\n\r\t\b\f\u0001\u001f\u007f"}`, `{"a": "\ud83d\ude42"}`, `{"a": "\ud83d"}`, `{"<": 1}`, `{"a\"": 1}`,
	`{"a": 1, "a": 2}`, `{"a":1e+21}`, `{"é": 1, "z": 2}`, `{"a": "\u00E9\u00e9"}`, `{"a": "\uzzzz"}`,
}

// wantCanonical is what AppendCanonical must write: marshal(Decode(text)).
func wantCanonical(text string) ([]byte, error) {
	m, err := Decode([]byte(text))
	if err != nil {
		return nil, err
	}
	return marshal(m)
}

// FuzzAppendCanonical: AppendCanonical writes marshal(Decode(text)) after
// what dst holds, and fails where Decode fails.
func FuzzAppendCanonical(f *testing.F) {
	for _, s := range append(slices.Clone(decodeSeeds), canonSeeds...) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		want, werr := wantCanonical(text)
		got, err := AppendCanonical([]byte("prefix"), text)
		if (err != nil) != (werr != nil) {
			t.Fatalf("AppendCanonical(%q): %v; Decode: %v", text, err, werr)
		}
		if err == nil && string(got) != "prefix"+string(want) {
			t.Fatalf("AppendCanonical(%q) = %s, want prefix%s", text, got, want)
		}
		if out, ok := appendFast(nil, text, nil); ok && (werr != nil || !bytes.Equal(out, want)) {
			t.Fatalf("appendFast(%q) = %s; want %s, %v", text, out, want, werr)
		}
	})
}

// jsonbText prints v as PostgreSQL's jsonb prints it: ", " and ": " between
// members, keys ordered by length then bytes, only ", \ and controls escaped.
func jsonbText(b []byte, v any) []byte {
	switch v := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(a, b string) int {
			if len(a) != len(b) {
				return len(a) - len(b)
			}
			return strings.Compare(a, b)
		})
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = jsonbText(b, k)
			b = append(b, ": "...)
			b = jsonbText(b, v[k])
		}
		return append(b, '}')
	case []any:
		b = append(b, '[')
		for i, e := range v {
			if i > 0 {
				b = append(b, ", "...)
			}
			b = jsonbText(b, e)
		}
		return append(b, ']')
	case string:
		b = append(b, '"')
		for _, c := range []byte(v) {
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, `\n`...)
			case '\r':
				b = append(b, `\r`...)
			case '\t':
				b = append(b, `\t`...)
			case '\b':
				b = append(b, `\b`...)
			case '\f':
				b = append(b, `\f`...)
			default:
				if c < 0x20 {
					b = append(b, `\u00`...)
					b = append(b, hexDigits[c>>4], hexDigits[c&0xF])
				} else {
					b = append(b, c)
				}
			}
		}
		return append(b, '"')
	case json.Number:
		return append(b, v...)
	case float64:
		return strconv.AppendFloat(b, v, 'f', -1, 64)
	case bool:
		return strconv.AppendBool(b, v)
	case nil:
		return append(b, "null"...)
	}
	panic("jsonbText: " + string(rune(0)))
}

// TestAppendCanonicalOnStoredText: on random changes as SQLite keeps them
// (marshal's text) and as jsonb prints them, AppendCanonical writes
// marshal(Decode(text)); the walk takes every text whose strings hold no
// control character but \n, \r and \t and no number but integers.
func TestAppendCanonicalOnStoredText(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // reproducible test values, not a secret
	pieces := []string{"a", "Z", "0", " ", "key_", "-", "é", "日本", "\u2028", "\u2029", "<", ">", "&", `"`, `\`,
		"\n", "\t", "\r", "/", "'", "🙂", "\ufffd", "\x7f", "\x01", "\b", "\xff"}
	unusual := false
	str := func(key bool) string {
		var b []byte
		for range rng.IntN(6) {
			p := pieces[rng.IntN(len(pieces))]
			if key && rng.IntN(8) > 0 {
				p = pieces[rng.IntN(7)] // keys that take the walk, mostly
			}
			b = append(b, p...)
		}
		if key && !plainKey(string(b)) {
			unusual = true // a key the walk declines by design
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
			return json.Number(strconv.FormatInt(rng.Int64N(1<<62)-1<<61, 10))
		case n == 3 && rng.IntN(10) == 0:
			unusual = true
			return rng.Float64() * 1e6
		case n == 4 && depth < 3:
			a := []any{}
			for range rng.IntN(4) {
				a = append(a, value(depth+1))
			}
			return a
		case n == 5 && depth < 3:
			m := map[string]any{}
			for range rng.IntN(6) {
				m[str(true)] = value(depth + 1)
			}
			return m
		default:
			return str(false)
		}
	}
	fast := 0
	const runs = 20000
	for i := range runs {
		unusual = false
		m := map[string]any{}
		for range rng.IntN(8) {
			m[str(true)] = value(1)
		}
		stored, err := marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		for _, text := range []string{string(stored), string(jsonbText(nil, m))} {
			want, err := wantCanonical(text)
			if err != nil {
				t.Fatalf("#%d %s: %v", i, text, err)
			}
			for range 2 { // the walk, then the memo
				if got, err := Canonical(text); err != nil || got != string(want) {
					t.Fatalf("#%d Canonical(%s) = %s, %v; want %s", i, text, got, err, want)
				}
			}
			got, err := AppendCanonical([]byte("x"), text)
			if err != nil || string(got) != "x"+string(want) {
				t.Fatalf("#%d %s:\n got %s, %v\nwant x%s", i, text, got, err, want)
			}
			out, ok := appendFast(nil, text, nil)
			if ok {
				fast++
				if !bytes.Equal(out, want) {
					t.Fatalf("#%d appendFast(%s) = %s, want %s", i, text, out, want)
				}
			}
			if !ok && !unusual && plainStrings(text) {
				t.Errorf("#%d: the walk declined %s", i, text)
			}
		}
	}
	if fast < runs/2 {
		t.Fatalf("the walk took %d of %d texts", fast, 2*runs)
	}
}

// plainStrings reports whether text holds nothing the walk declines by
// design: controls but \n, \r and \t (raw or escaped), invalid UTF-8, U+FFFD.
func plainStrings(text string) bool {
	if !utf8.ValidString(text) || strings.ContainsRune(text, utf8.RuneError) {
		return false
	}
	for _, bad := range []string{`\b`, `\f`, `\u00`, "\x01", "\b", `\ufffd`} {
		if strings.Contains(text, bad) {
			return false
		}
	}
	return true
}

// plainKey reports whether the walk takes k as a key: written as itself.
func plainKey(k string) bool {
	for _, r := range k {
		if r < 0x20 || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&' || r == utf8.RuneError ||
			r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	return true
}

// TestAppendCanonicalTakesWhatTheStoresWrite: the changes the use cases
// record, in both stores' forms, take the walk.
func TestAppendCanonicalTakesWhatTheStoresWrite(t *testing.T) {
	b, norm, err := Encode(map[string]any{
		"name": "Checkout <backend> & \"ops\"", "type": "SECRET", "status": "ACTIVE", "managed": false, "expires_at": nil,
		"key_hint": "sk_test_…abcd", "metadata": map[string]string{"team": "bench", "note": "a\nb\u2028"}, "n": -3,
		"permissions": map[string][]string{"payment": {"create", "read"}, "refund": {"read"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(b), string(jsonbText(nil, norm)), decodeSeeds[5]} {
		want, _ := wantCanonical(s)
		if got, ok := appendFast(nil, s, nil); !ok || !bytes.Equal(got, want) {
			t.Errorf("appendFast(%s) = %s, %v; want %s", s, got, ok, want)
		}
	}
}

// TestCanonicalMemo: the memo answers what the walk wrote, keeps within
// memoBytes (starting over when full) and fails as Decode fails.
func TestCanonicalMemo(t *testing.T) {
	if _, err := Canonical(`[1]`); err == nil {
		t.Error("Canonical([1]) succeeded")
	}
	for i := range 3 * memoBytes / 1000 {
		text := fmt.Sprintf(`{"b": %d, "a": "%0900d"}`, i, i)
		got, err := Canonical(text)
		if want := fmt.Sprintf(`{"a":"%0900d","b":%d}`, i, i); err != nil || got != want {
			t.Fatalf("Canonical(%s) = %s, %v", text, got, err)
		}
		if s, ok := memo.get(text); !ok || s != got {
			t.Fatalf("memo of %s: %q, %v", text, s, ok)
		}
		memo.mu.RLock()
		n, size := memo.bytes, len(memo.m)
		memo.mu.RUnlock()
		if n > memoBytes || size == 0 {
			t.Fatalf("memo holds %d bytes in %d texts, at most %d", n, size, memoBytes)
		}
	}
}

// TestAppendCanonicalLargeObject: an object of many members out of order
// (a large metadata, as jsonb orders it) is sorted as marshal sorts it.
func TestAppendCanonicalLargeObject(t *testing.T) {
	m := map[string]any{}
	for i := range 3000 {
		m[strconv.Itoa(i*7919%3001)] = map[string]any{"z": json.Number(strconv.Itoa(i)), "a": []any{strconv.Itoa(i)}}
	}
	text := string(jsonbText(nil, map[string]any{"metadata": m}))
	want, err := wantCanonical(text)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := appendFast(nil, text, nil)
	if !ok || !bytes.Equal(got, want) {
		t.Fatalf("appendFast: %v, %.200s…; want %.200s…", ok, got, want)
	}
}
