// Package redact removes token-shaped substrings from text bound for logs:
// API keys (sk_/pk_ followed by key characters, anywhere in the text) and
// JWT-shaped strings (base64url segments separated by dots). It is the one
// sanitizer for anything a request can put in a log line; Handler applies it
// to every string a slog record carries.
//
// Percent-encoding does not hide a token: "%5F", "%255F" (and deeper) are read
// as the character they finally decode to, so sk%5Ftest%5F… is a key and
// eyJ…%2EeyJ…%2E… a JWT. The whole encoded span is replaced.
package redact

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
)

// Marker replaces each token-shaped span.
const Marker = "{redacted}"

// String returns s with every token-shaped substring replaced by Marker.
// Text that cannot hold a token is returned as is, without allocating.
func String(s string) string {
	if !mayHoldToken(s) {
		return s
	}
	var spans []span
	spans = jwtSpans(s, spans)
	spans = keySpans(s, spans)
	if len(spans) == 0 {
		return s
	}
	return replace(s, spans)
}

// mayHoldToken is false for text that cannot hold a token, checked in a few
// byte scans: without '%' every character is literal, so a key needs "k_"
// (of "sk_"/"pk_") and a JWT two dots and, as jwtShaped wants, a header
// holding "eyJ", "eyA" or "ewo" (so "ey" or "ew" somewhere) or a header and
// payload of 10 characters or more (so a run of 10 base64url characters).
// Most log values (request ids, route templates, methods, operation names,
// IPv4 client addresses, whose dots used to send every access-log line
// through both full scans) stop here.
func mayHoldToken(s string) bool {
	if strings.IndexByte(s, '%') >= 0 || strings.Contains(s, "k_") {
		return true
	}
	first := strings.IndexByte(s, '.')
	if first < 0 || strings.IndexByte(s[first+1:], '.') < 0 {
		return false
	}
	return strings.Contains(s, "ey") || strings.Contains(s, "ew") || hasB64Run(s, 10)
}

// hasB64Run reports whether s holds n base64url characters in a row.
func hasB64Run(s string, n int) bool {
	run := 0
	for i := 0; i < len(s); i++ {
		if !isB64(s[i]) {
			run = 0
			continue
		}
		if run++; run >= n {
			return true
		}
	}
	return false
}

// Contains reports whether s holds a token-shaped substring.
func Contains(s string) bool { return String(s) != s }

type span struct{ start, end int }

// char decodes the logical character at s[i]: a byte, or a percent escape
// "%HH", "%25HH", "%2525HH"… (an escape of an escape) read as the byte HH.
// It returns the byte and how many bytes of s it spans.
func char(s string, i int) (byte, int) {
	if s[i] != '%' {
		return s[i], 1
	}
	j := i + 1
	for j+4 <= len(s) && s[j] == '2' && s[j+1] == '5' && isHex(s[j+2]) && isHex(s[j+3]) {
		j += 2 // "%25" is an escaped '%': look at what follows it
	}
	if j+2 <= len(s) && isHex(s[j]) && isHex(s[j+1]) {
		return unhex(s[j])<<4 | unhex(s[j+1]), j + 2 - i
	}
	return '%', 1
}

func isHex(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' }

func unhex(c byte) byte {
	switch {
	case c >= '0' && c <= '9':
		return c - '0'
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// isKeyChar: what follows "sk_" in a key (sk_live_ + base62).
func isKeyChar(c byte) bool { return isAlnum(c) || c == '_' }

// isB64 is the base64url alphabet.
func isB64(c byte) bool { return isAlnum(c) || c == '-' || c == '_' }

// keySpans finds "sk_" or "pk_" followed by at least one key character, at
// any position (Classify accepts a key whose "sk_" is not at the start), and
// spans it through the last key character.
func keySpans(s string, out []span) []span {
	for i := 0; i < len(s); {
		c0, w0 := char(s, i)
		if (c0 == 's' || c0 == 'p') && i+w0 < len(s) {
			if c1, w1 := char(s, i+w0); c1 == 'k' && i+w0+w1 < len(s) {
				if c2, w2 := char(s, i+w0+w1); c2 == '_' {
					j, n := i+w0+w1+w2, 0
					for j < len(s) {
						c, w := char(s, j)
						if !isKeyChar(c) {
							break
						}
						j += w
						n++
					}
					if n > 0 {
						out = append(out, span{i, j})
						i = j
						continue
					}
				}
			}
		}
		i += w0
	}
	return out
}

// segment is one dot-separated part of a base64url run.
type segment struct {
	n     int     // logical characters
	last2 [2]byte // the two characters before the current one
	json  bool    // holds "eyJ", "eyA" or "ewo": base64url of a JSON object's start
}

// add appends c to the segment.
func (g *segment) add(c byte) {
	if g.n >= 2 && g.last2[0] == 'e' && (g.last2[1] == 'y' && (c == 'J' || c == 'A') || g.last2[1] == 'w' && c == 'o') {
		g.json = true
	}
	g.last2[0], g.last2[1] = g.last2[1], c
	g.n++
}

// jwtSpans finds maximal runs of base64url characters and dots that hold
// three consecutive segments shaped like header.payload.signature: header
// and payload non-empty and either both at least 10 characters long (any
// real token's are; a prefix glued to the header, as in "x-eyJ…", only makes
// it longer) or the header holding "eyJ", "eyA" or "ewo" — how the base64url
// of a JSON object starts ({"…, { "…, {\n …) — anywhere, so a prefix glued
// to it does not hide it. The whole run is spanned: "foo.eyJ….eyJ….sig"
// loses "foo." too, which is cheaper than a leak.
func jwtSpans(s string, out []span) []span {
	var stack [8]segment
	segs := stack[:0]
	for i := 0; i < len(s); {
		c, w := char(s, i)
		if !isB64(c) && c != '.' {
			i += w
			continue
		}
		start, dots := i, 0
		segs = append(segs[:0], segment{})
		for i < len(s) {
			c, w = char(s, i)
			if c == '.' {
				dots++
				segs = append(segs, segment{})
			} else if isB64(c) {
				segs[len(segs)-1].add(c)
			} else {
				break
			}
			i += w
		}
		if dots >= 2 && jwtShaped(segs) {
			out = append(out, span{start, i})
		}
	}
	return out
}

func jwtShaped(segs []segment) bool {
	for k := 0; k+2 < len(segs); k++ {
		h, p := segs[k], segs[k+1]
		if h.n == 0 || p.n == 0 {
			continue
		}
		if h.n >= 10 && p.n >= 10 {
			return true
		}
		if h.json {
			return true
		}
	}
	return false
}

// replace rewrites s with the (possibly overlapping) spans replaced by Marker.
func replace(s string, spans []span) string {
	// Few spans: insertion sort keeps this allocation-free.
	for i := 1; i < len(spans); i++ {
		for j := i; j > 0 && spans[j].start < spans[j-1].start; j-- {
			spans[j], spans[j-1] = spans[j-1], spans[j]
		}
	}
	var b strings.Builder
	b.Grow(len(s))
	pos := 0
	for _, sp := range spans {
		if sp.end <= pos {
			continue // inside a span already replaced
		}
		if sp.start >= pos {
			b.WriteString(s[pos:sp.start])
			b.WriteString(Marker)
		} // else it overlaps the span just replaced: extend that one
		pos = sp.end
	}
	b.WriteString(s[pos:])
	return b.String()
}

// Handler wraps h so that the message and every string in a record (string
// values, errors, Stringers, and any other value as it would be marshalled)
// pass through String before h sees them.
func Handler(h slog.Handler) slog.Handler {
	if rh, ok := h.(handler); ok {
		return rh
	}
	return handler{h}
}

type handler struct{ h slog.Handler }

func (r handler) Enabled(ctx context.Context, l slog.Level) bool { return r.h.Enabled(ctx, l) }

func (r handler) Handle(ctx context.Context, rec slog.Record) error {
	if clean(rec) {
		// Nothing to replace (the access log's lines, nearly always): the
		// record goes on as is, without being copied attribute by attribute.
		return r.h.Handle(ctx, rec)
	}
	out := slog.NewRecord(rec.Time, rec.Level, String(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(Attr(a))
		return true
	})
	return r.h.Handle(ctx, out)
}

func (r handler) WithAttrs(as []slog.Attr) slog.Handler {
	clean := make([]slog.Attr, len(as))
	for i, a := range as {
		clean[i] = Attr(a)
	}
	return handler{r.h.WithAttrs(clean)}
}

func (r handler) WithGroup(name string) slog.Handler { return handler{r.h.WithGroup(name)} }

// clean reports whether Handle would pass rec on unchanged: its message and
// every string in it hold no token, and it holds nothing Attr would have to
// resolve, render or marshal to tell (errors, Stringers, LogValuers, any).
func clean(rec slog.Record) bool {
	if Contains(rec.Message) {
		return false
	}
	ok := true
	rec.Attrs(func(a slog.Attr) bool {
		ok = cleanValue(a.Value)
		return ok
	})
	return ok
}

func cleanValue(v slog.Value) bool {
	switch v.Kind() {
	case slog.KindString:
		return !Contains(v.String())
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return true // Attr keeps these as they are
	case slog.KindGroup:
		for _, a := range v.Group() {
			if !cleanValue(a.Value) {
				return false
			}
		}
		return true
	}
	return false // KindAny, KindLogValuer: Attr's slow path decides
}

// Attr sanitizes one attribute's value (groups recursively).
func Attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, String(v.String()))
	case slog.KindGroup:
		g := v.Group()
		clean := make([]any, len(g))
		for i, ga := range g {
			clean[i] = Attr(ga)
		}
		return slog.Group(a.Key, clean...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, String(x.Error()))
		case fmt.Stringer:
			return slog.String(a.Key, String(x.String()))
		case []byte:
			return slog.String(a.Key, String(string(x)))
		default:
			// Whatever the JSON handler would write; replaced only if it holds a token.
			if js, err := json.Marshal(x); err == nil {
				if clean := String(string(js)); clean != string(js) {
					return slog.String(a.Key, clean)
				}
			} else if txt := fmt.Sprint(x); Contains(txt) {
				return slog.String(a.Key, String(txt))
			}
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}
