package server

import (
	"net/http"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"
)

// The appenders the hand-rendered 200 answers share (get and list keys,
// render_reads.go; the audit page, render_audit.go; verify's verdict,
// verify_api_key.go). Each writes encoding/json's bytes for its value, which
// those files' randomized tests hold them to.

// writeAppended sends what appendBody appends to a pooled buffer as the 200
// answer, in one Write. An error sends nothing (the strict handler's error
// envelope is the answer), as the generated responses do when encoding
// fails.
func writeAppended(w http.ResponseWriter, appendBody func([]byte) ([]byte, error)) error {
	bp := pageBuffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer func() {
		if cap(*bp) <= 4<<20 { // a larger answer's buffer is let go
			pageBuffers.Put(bp)
		}
	}()
	b, err := appendBody((*bp)[:0])
	*bp = b
	if err != nil {
		return err
	}
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

// jsonContentType is the Content-Type header's value, shared by the
// responses that set it: assigned rather than Header.Set, which allocates
// a slice per response (nothing writes into a header's value slice; Add
// appends past its capacity, so into a copy).
var jsonContentType = []string{echo.MIMEApplicationJSON}

// pageBuffers hold the answers as they are appended; a buffer grown past
// 4 MiB (a huge page) is let go rather than kept by the pool.
var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// appendTime appends t as time.Time's MarshalJSON writes it, without its
// allocation: the same strict RFC 3339 form, refusing the same times (a
// year past 9999, an offset of 24 hours or more).
func appendTime(b []byte, t time.Time) ([]byte, error) {
	b = append(b, '"')
	b, err := t.AppendText(b)
	return append(b, '"'), err
}

func appendTimePtr(b []byte, t *time.Time) ([]byte, error) {
	if t == nil {
		return append(b, `null`...), nil
	}
	return appendTime(b, *t)
}

// appendMetadata appends m with its keys sorted, as encoding/json writes a
// map (nil as {}: toAPIKey renders no metadata as an empty object).
func appendMetadata(b []byte, m map[string]string) []byte {
	return appendSortedMap(b, m, appendJSONString)
}

// appendPermissions appends a permission map as encoding/json writes
// api.Permissions: null when nil, its resources sorted, a nil list of
// actions as null.
func appendPermissions(b []byte, m map[string][]string) []byte {
	if m == nil {
		return append(b, `null`...)
	}
	return appendSortedMap(b, m, appendJSONStrings)
}

// appendSortedMap appends m as an object, its members in encoding/json's
// order (sortedKeys), each value by appendValue.
func appendSortedMap[V any](b []byte, m map[string]V, appendValue func([]byte, V) []byte) []byte {
	var buf [16]string // a key's metadata and the catalog's resources fit: no allocation
	b = append(b, '{')
	for i, name := range sortedKeys(buf[:0], m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, name)
		b = append(b, ':')
		b = appendValue(b, m[name])
	}
	return append(b, '}')
}

// appendJSONStrings appends a []string: null when nil.
func appendJSONStrings(b []byte, list []string) []byte {
	if list == nil {
		return append(b, `null`...)
	}
	b = append(b, '[')
	for i, s := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}

// sortedKeys appends m's keys to dst in encoding/json's order for a map's
// string keys (bytewise, before escaping).
func sortedKeys[V any](dst []string, m map[string]V) []string {
	for name := range m {
		dst = append(dst, name)
	}
	slices.Sort(dst)
	return dst
}

// appendJSONString appends s quoted as encoding/json writes a string with
// HTML escaping on: ", \ and the controls escaped (\b, \f, \n, \r, \t
// short), <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029
// escaped, invalid UTF-8 as \ufffd; everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && htmlSafe[s[i]] {
		i++ // the common case, ids and hashes: nothing to escape
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// htmlSafe is the ASCII encoding/json writes as it is with HTML escaping
// on: not a control, ", \, <, > or &.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// appendJSONText is appendJSONString for the longer strings of a page (an
// audit event's ids and hashes: ~300 bytes of strings an event, ~30 KB a
// page of 100): the run with nothing to escape is found eight bytes at a
// time (htmlSafePrefix) rather than byte by byte, and a string with
// something to escape is appendJSONString's.
func appendJSONText(b []byte, s string) []byte {
	if htmlSafePrefix(s) < len(s) {
		return appendJSONString(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// htmlSafePrefix is the length of s's longest prefix of bytes that
// appendJSONString writes as they are (htmlSafe ASCII). A word of eight
// bytes is taken whole when none of its bytes is non-ASCII (high bit), a
// control (below 0x20), ", \, <, > or &: each test below is nonzero exactly
// when some byte of the word matches (the well-known "has a zero byte" and
// "has a byte less than n" word tests, exact for whether any byte does,
// which is all that is asked); the rest, and the word that holds such a
// byte, go byte by byte.
func htmlSafePrefix(s string) int {
	const (
		lsb = 0x0101010101010101
		msb = 0x8080808080808080
	)
	// zero's high bit of a byte is set below the lowest zero byte of y
	// only by a borrow, so "some byte of y is zero" is exactly zero(y)&msb != 0.
	zero := func(y uint64) uint64 { return (y - lsb) &^ y }
	i := 0
	for ; i+8 <= len(s); i += 8 {
		w := s[i : i+8]
		x := uint64(w[0]) | uint64(w[1])<<8 | uint64(w[2])<<16 | uint64(w[3])<<24 |
			uint64(w[4])<<32 | uint64(w[5])<<40 | uint64(w[6])<<48 | uint64(w[7])<<56
		// x|(x-0x20…): a byte of 0x80 or more, or one below 0x20 (the
		// lowest such byte borrows from no byte below it).
		bad := x | (x - 0x20*lsb) | zero(x^'"'*lsb) | zero(x^'\\'*lsb) | zero(x^'<'*lsb) | zero(x^'>'*lsb) | zero(x^'&'*lsb)
		if bad&msb != 0 {
			break
		}
	}
	for i < len(s) && s[i] < utf8.RuneSelf && htmlSafe[s[i]] {
		i++
	}
	return i
}
