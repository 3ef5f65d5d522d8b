package auditrow

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// Reading the changes back is most of an audit page's cost: encoding/json's
// Decoder plus the walk that settles its numbers took ~30% of the CPU of a
// page of 100 events. What the stores hold is what Encode wrote (SQLite:
// json.Marshal's text; PostgreSQL: jsonb's text of it): objects, lists,
// strings without escapes, integers, booleans and nulls. fastDecode reads
// exactly those, its strings cut from the text (no copy), and declines
// anything else (an escape, a fraction or exponent, invalid UTF-8, a control
// character, a malformed text, deep nesting), which then takes decodeJSON:
// the result is always decodeJSON's (FuzzDecode holds the two together).
//
// A JSON library in its place was measured (issue 19) and is much slower:
// goccy/go-json's Decoder (its Unmarshal cannot keep integers exact: no
// UseNumber) took a SQLite page of 100 events from ~550 to ~900 µs of CPU
// and ~270 to ~450 KB (BenchmarkReads/list_audit_events), ~2x this
// decoder per event; bytedance/sonic (UseNumber, CopyString,
// ValidateString) reads alike but ~1.5x this decoder's time per event.

// maxFastDepth bounds the nesting fastDecode follows (encoding/json allows
// 10000 levels; changes nest two or three).
const maxFastDepth = 64

// DecodeString is Decode of a column's text, read without copying it.
func DecodeString(text string) (map[string]any, error) {
	if m, ok := fastDecode(text); ok {
		return m, nil
	}
	return decodeJSON([]byte(text))
}

func fastDecode(text string) (map[string]any, bool) {
	p := fastText{s: text, ok: true}
	p.space()
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return nil, false
	}
	m := p.object(0)
	p.space()
	return m, p.ok && p.i == len(p.s)
}

// fastText walks text; a failed step leaves ok false and the caller declines.
type fastText struct {
	s  string
	i  int
	ok bool
}

func (p *fastText) space() {
	for p.i < len(p.s) {
		switch p.s[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// next skips white space and reports whether the next byte is c (and takes it).
func (p *fastText) next(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

func (p *fastText) fail() any {
	p.ok = false
	return nil
}

func (p *fastText) value(depth int) any {
	p.space()
	if p.i >= len(p.s) {
		return p.fail()
	}
	switch c := p.s[p.i]; {
	case c == '{':
		if m := p.object(depth + 1); p.ok {
			return m
		}
		return nil
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		return p.str()
	case c == 't':
		return p.literal("true", true)
	case c == 'f':
		return p.literal("false", false)
	case c == 'n':
		return p.literal("null", nil)
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	}
	return p.fail()
}

func (p *fastText) literal(word string, v any) any {
	if len(p.s)-p.i < len(word) || p.s[p.i:p.i+len(word)] != word {
		return p.fail()
	}
	p.i += len(word)
	return v
}

// object reads {"key": value, ...}; p.s[p.i] is '{'.
func (p *fastText) object(depth int) map[string]any {
	p.i++
	if depth > maxFastDepth {
		p.ok = false
		return nil
	}
	m := map[string]any{}
	if p.next('}') {
		return m
	}
	for p.ok {
		p.space()
		key, ok := p.str().(string)
		if !ok || !p.next(':') {
			p.ok = false
			return nil
		}
		v := p.value(depth)
		if !p.ok {
			return nil
		}
		m[key] = v // the last of equal keys wins, as in encoding/json
		if p.next('}') {
			return m
		}
		if !p.next(',') {
			p.ok = false
		}
	}
	return nil
}

// array reads [value, ...]; p.s[p.i] is '['.
func (p *fastText) array(depth int) any {
	p.i++
	if depth > maxFastDepth {
		return p.fail()
	}
	list := []any{}
	if p.next(']') {
		return list
	}
	for p.ok {
		v := p.value(depth)
		if !p.ok {
			return nil
		}
		list = append(list, v)
		if p.next(']') {
			return list
		}
		if !p.next(',') {
			p.ok = false
		}
	}
	return nil
}

// str reads a string without escapes, valid UTF-8 without control characters.
func (p *fastText) str() any {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return p.fail()
	}
	p.i++
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if !utf8.ValidString(v) {
				return p.fail()
			}
			return v
		case c == '\\' || c < 0x20:
			return p.fail()
		}
		p.i++
	}
	return p.fail()
}

// number reads an integer (JSON's grammar: no leading zero) that fits in 64
// bits, as decodeJSON gives it: its digits as a json.Number ("-0" is "0").
// A fraction, an exponent or a larger integer declines (decodeJSON makes
// it a float64).
func (p *fastText) number() any {
	start := p.i
	if p.s[p.i] == '-' {
		p.i++
	}
	switch {
	case p.i < len(p.s) && p.s[p.i] == '0':
		p.i++
	case p.i < len(p.s) && p.s[p.i] >= '1' && p.s[p.i] <= '9':
		for p.i < len(p.s) && p.s[p.i] >= '0' && p.s[p.i] <= '9' {
			p.i++
		}
	default:
		return p.fail()
	}
	if p.i < len(p.s) {
		switch p.s[p.i] {
		case '.', 'e', 'E':
			return p.fail()
		}
	}
	text := p.s[start:p.i]
	if text == "-0" {
		return json.Number("0")
	}
	if len(text) > 18 { // 18 digits always fit an int64; past them, ask strconv
		_, errI := strconv.ParseInt(text, 10, 64)
		_, errU := strconv.ParseUint(text, 10, 64)
		if errI != nil && errU != nil {
			return p.fail()
		}
	}
	return json.Number(text)
}
