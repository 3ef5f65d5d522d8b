package server

import (
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestJSONTextIsEncodingJSON: appendJSONText writes encoding/json's bytes
// for strings of every length up to a few words, plain ones (taken a word
// at a time) and ones with a byte to escape or non-ASCII at any position:
// each of ", \, <, >, &, the controls, DEL, U+2028, U+2029, other UTF-8 and
// invalid UTF-8 (a lone continuation byte too), next to bytes one off them (!, ', ;, =, ?, [, ], %, '),
// so that a word test that misses a byte, or takes one it should not, fails.
func TestJSONTextIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // test values, seeded to be repeatable
	plain := "0123456789abcdefABCDEFxyz_-.:/ !#$%'()*+,;=?@[]^`{|}~"
	odd := []string{`"`, `\`, "<", ">", "&", "\x00", "\x01", "\x1f", "\n", "\t", "\x7f", "\u2028", "\u2029", "é", "✓",
		"日本", "\xff", "\xc3", "\xe2\x80", "\x80", "\x85", "\x9f", "\xa0", "!", "#", ";", "=", "?", "[", "]", "%", "'", " "}
	for n := range 40000 {
		var sb strings.Builder
		length := r.IntN(40)
		for range length {
			sb.WriteByte(plain[r.IntN(len(plain))])
		}
		s := sb.String()
		if n%4 != 0 { // one or two odd strings at any position
			for range 1 + r.IntN(2) {
				at := r.IntN(len(s) + 1)
				s = s[:at] + odd[r.IntN(len(odd))] + s[at:]
			}
		}
		want, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		prefix := []byte("x,")
		got := appendJSONText(prefix, s)
		if string(got) != "x,"+string(want) {
			t.Fatalf("appendJSONText(%q) = %s, want %s", s, got[2:], want)
		}
		if i := htmlSafePrefix(s); i > len(s) || (i < len(s) && s[i] < 0x80 && htmlSafe[s[i]]) ||
			strings.ContainsFunc(s[:i], func(c rune) bool { return c >= 0x80 || !htmlSafe[c] }) {
			t.Fatalf("htmlSafePrefix(%q) = %d", s, i)
		}
	}
}
