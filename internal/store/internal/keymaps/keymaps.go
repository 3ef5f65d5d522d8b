// Package keymaps reads a key's permissions and metadata from their column's
// JSON text, as both stores keep them.
//
// They are decoded on every read of a key (a write's re-check of its caller,
// a credential cache miss, lists: 21 keys a page). The text is what the
// store wrote (SQLite: json.Marshal's; PostgreSQL: jsonb's text of it, with
// spaces) or a migration's json functions: an object of plain strings or of
// lists of them. Those are read here without encoding/json's reflection,
// their strings cut from the column's text (no copy); anything else (an
// escape, null, a number, invalid UTF-8 or a control character) goes to
// json.Unmarshal, which then decides, so the result is always
// json.Unmarshal's.
package keymaps

import (
	"encoding/json"
	"unicode/utf8"
)

// Permissions reads a permissions column: {"resource": ["action", …], …}.
func Permissions(text string) (map[string][]string, error) {
	if m, ok := fastPermissions(text); ok {
		return m, nil
	}
	var m map[string][]string
	err := json.Unmarshal([]byte(text), &m)
	return m, err
}

// Metadata reads a metadata column: {"key": "value", …}.
func Metadata(text string) (map[string]string, error) {
	if m, ok := fastMetadata(text); ok {
		return m, nil
	}
	var m map[string]string
	err := json.Unmarshal([]byte(text), &m)
	return m, err
}

// jsonText walks text; a failed step leaves ok false and the caller falls back.
type jsonText struct {
	s  string
	i  int
	ok bool
}

func (p *jsonText) space() {
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
func (p *jsonText) next(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// str reads a string without escapes, as valid UTF-8 without control characters.
func (p *jsonText) str() string {
	if !p.next('"') {
		p.ok = false
		return ""
	}
	start := p.i
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			v := p.s[start:p.i]
			p.i++
			if !utf8.ValidString(v) {
				p.ok = false
			}
			return v
		case c == '\\' || c < 0x20:
			p.ok = false
			return ""
		}
		p.i++
	}
	p.ok = false
	return ""
}

// object reads {"key": value, ...} calling value after each key's colon.
func (p *jsonText) object(value func(key string)) {
	if !p.next('{') {
		p.ok = false
		return
	}
	if p.next('}') {
		return
	}
	for p.ok {
		key := p.str()
		if !p.ok || !p.next(':') {
			p.ok = false
			return
		}
		value(key)
		if !p.ok || p.next('}') {
			return
		}
		if !p.next(',') {
			p.ok = false
		}
	}
}

func (p *jsonText) end() bool {
	p.space()
	return p.ok && p.i == len(p.s)
}

// fastPermissions gathers the lists' strings first and then makes the map
// at its size and one array that all the lists are cut from (each capped at
// its length, so that appending to one never writes into the next): a
// key's permissions are two allocations however many resources it has,
// where a list of its own each, grown by append, was ~6 a key, ~30% of a
// key page's allocations.
func fastPermissions(text string) (map[string][]string, bool) {
	p := jsonText{s: text, ok: true}
	var (
		nameBuf  [8]string
		countBuf [8]int
		itemBuf  [32]string
	)
	names, counts, items := nameBuf[:0], countBuf[:0], itemBuf[:0]
	p.object(func(key string) {
		if !p.next('[') {
			p.ok = false
			return
		}
		n := 0
		if !p.next(']') {
			for p.ok {
				items = append(items, p.str())
				n++
				if !p.ok || p.next(']') {
					break
				}
				if !p.next(',') {
					p.ok = false
				}
			}
		}
		names, counts = append(names, key), append(counts, n)
	})
	if !p.end() {
		return nil, false
	}
	m := make(map[string][]string, len(names))
	all := make([]string, len(items)) // never nil: an empty list is [], not null
	copy(all, items)
	at := 0
	for i, name := range names {
		n := counts[i]
		m[name] = all[at : at+n : at+n] // a repeated name: the last one, as json.Unmarshal
		at += n
	}
	return m, true
}

func fastMetadata(text string) (map[string]string, bool) {
	p := jsonText{s: text, ok: true}
	m := map[string]string{}
	p.object(func(key string) { m[key] = p.str() })
	return m, p.end()
}
