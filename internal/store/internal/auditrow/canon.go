package auditrow

import (
	"bytes"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

// A page of audit events answers each event's changes as the JSON of the
// map Decode reads from the column (marshal(Decode(text))): decoding 100
// changes into maps only to encode them again was ~30% of a page's CPU.
// AppendCanonical writes that JSON straight from the column's text instead:
// SQLite's text is marshal's already (compact, keys sorted, encoding/json's
// escapes), PostgreSQL's jsonb text differs only in form (", " and ": "
// between members, keys ordered by length, its own escapes), so the text is
// walked once and written again in marshal's form: white space dropped,
// each object's members sorted by key, strings escaped as encoding/json
// escapes them, integers as Decode keeps them. Anything the walk does not
// know for certain (a fraction or exponent, a key that is escaped or needs
// escaping, a control character other than \n, \r and \t, a lone surrogate,
// invalid UTF-8, a duplicate key, a malformed text, deep nesting) declines,
// and the column takes the way it took before: Decode, then marshal.
// FuzzAppendCanonical holds the result to marshal(Decode(text)).

// AppendCanonical appends marshal(Decode(text)) to dst: the changes as a
// read answers them. An error is Decode's (the text is not a JSON object).
func AppendCanonical(dst []byte, text string) ([]byte, error) {
	return appendCanonical(dst, text, nil)
}

// appendCanonical is AppendCanonical with a buffer to reuse for sorting an
// object's members (nil: one is made when needed).
func appendCanonical(dst []byte, text string, scratch *[]byte) ([]byte, error) {
	if out, ok := appendFast(dst, text, scratch); ok {
		return out, nil
	}
	m, err := DecodeString(text)
	if err != nil {
		return dst, err
	}
	b, err := marshal(m)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// appendFast is AppendCanonical's walk; false when it declines.
func appendFast(dst []byte, text string, scratch *[]byte) ([]byte, bool) {
	c := canonText{s: text, out: dst, ok: true}
	if scratch != nil {
		c.scratch = *scratch
		defer func() { *scratch = c.scratch }()
	}
	c.space()
	if c.i >= len(c.s) || c.s[c.i] != '{' {
		return dst, false
	}
	c.object(0)
	c.space()
	return c.out, c.ok && c.i == len(c.s)
}

// canonText walks s, writing the canonical form to out; a failed step
// leaves ok false and AppendCanonical declines.
type canonText struct {
	s       string
	i       int
	out     []byte
	ok      bool
	scratch []byte // sort's copy of the members
}

func (c *canonText) space() {
	s, i := c.s, c.i // locals: the loops run in registers
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	c.i = i
}

func (c *canonText) next(b byte) bool {
	c.space()
	if c.i < len(c.s) && c.s[c.i] == b {
		c.i++
		return true
	}
	return false
}

func (c *canonText) value(depth int) {
	c.space()
	if c.i >= len(c.s) {
		c.ok = false
		return
	}
	switch b := c.s[c.i]; {
	case b == '{':
		c.object(depth + 1)
	case b == '[':
		c.array(depth + 1)
	case b == '"':
		c.str()
	case b == 't':
		c.literal("true")
	case b == 'f':
		c.literal("false")
	case b == 'n':
		c.literal("null")
	case b == '-' || b >= '0' && b <= '9':
		c.number()
	default:
		c.ok = false
	}
}

func (c *canonText) literal(word string) {
	if len(c.s)-c.i < len(word) || c.s[c.i:c.i+len(word)] != word {
		c.ok = false
		return
	}
	c.i += len(word)
	c.out = append(c.out, word...)
}

// member is where an object's member went in out: its key's bytes (between
// the quotes) at key..keyEnd, the whole `"key":value` at start..end.
type member struct{ start, key, keyEnd, end int }

// object reads {"key": value, ...}; c.s[c.i] is '{'. The members are
// written as they come, then put in key order if they did not come in it.
func (c *canonText) object(depth int) {
	c.i++
	if depth > maxFastDepth {
		c.ok = false
		return
	}
	c.out = append(c.out, '{')
	if c.next('}') {
		c.out = append(c.out, '}')
		return
	}
	var buf [8]member
	members := buf[:0]
	sorted := true
	for c.ok {
		c.space()
		m := member{start: len(c.out)}
		if len(members) > 0 {
			c.out = append(c.out, ',')
			m.start++
		}
		m.key, m.keyEnd = c.key()
		if !c.ok || !c.next(':') {
			c.ok = false
			return
		}
		c.out = append(c.out, ':')
		c.value(depth)
		if !c.ok {
			return
		}
		m.end = len(c.out)
		if n := len(members); n > 0 {
			switch cmp := bytes.Compare(c.out[members[n-1].key:members[n-1].keyEnd], c.out[m.key:m.keyEnd]); {
			case cmp == 0:
				c.ok = false // a duplicate: Decode keeps the last, decline
				return
			case cmp > 0:
				sorted = false
			}
		}
		members = append(members, m)
		if c.next('}') {
			break
		}
		if !c.next(',') {
			c.ok = false
		}
	}
	if !c.ok {
		return
	}
	if !sorted && !c.sort(members) {
		return
	}
	c.out = append(c.out, '}')
}

// sort rewrites the members (written in text order) in key order.
func (c *canonText) sort(members []member) bool {
	from := members[0].start
	keyOf := func(m member) []byte { return c.out[m.key:m.keyEnd] }
	if len(members) <= 12 { // insertion sort: most objects are small
		for i := 1; i < len(members); i++ {
			for j := i; j > 0 && bytes.Compare(keyOf(members[j-1]), keyOf(members[j])) > 0; j-- {
				members[j-1], members[j] = members[j], members[j-1]
			}
		}
	} else {
		slices.SortFunc(members, func(a, b member) int { return bytes.Compare(keyOf(a), keyOf(b)) })
	}
	for i := 1; i < len(members); i++ {
		if bytes.Equal(keyOf(members[i-1]), keyOf(members[i])) {
			c.ok = false
			return false
		}
	}
	c.scratch = append(c.scratch[:0], c.out[from:]...)
	body := c.scratch
	c.out = c.out[:from]
	for i, m := range members {
		if i > 0 {
			c.out = append(c.out, ',')
		}
		c.out = append(c.out, body[m.start-from:m.end-from]...)
	}
	return true
}

// key reads an object's key and writes it; only a key that is the same
// text escaped or not (no escape, nothing encoding/json escapes) is taken,
// so that its bytes in out are the decoded key the members sort by.
func (c *canonText) key() (start, end int) {
	s, i := c.s, c.i
	if i >= len(s) || s[i] != '"' {
		c.ok = false
		return 0, 0
	}
	i++
	from := i
	for i < len(s) {
		b := s[i]
		switch {
		case b == '"':
			c.i = i + 1
			c.out = append(c.out, '"')
			start = len(c.out)
			c.out = append(c.out, s[from:i]...)
			end = len(c.out)
			c.out = append(c.out, '"')
			return start, end
		case b < utf8.RuneSelf:
			if !plainASCII[b] {
				c.ok = false
				return 0, 0
			}
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
				c.ok = false
				return 0, 0
			}
			i += size
		}
	}
	c.ok = false
	return 0, 0
}

// plainASCII is the ASCII bytes encoding/json writes as themselves (with
// HTML escaping on): not a control, ", \, <, > or &.
var plainASCII = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\' && b != '<' && b != '>' && b != '&'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// str reads a string and writes it as encoding/json writes its value: runs
// of characters written as they are go out in one append.
func (c *canonText) str() {
	c.i++
	c.out = append(c.out, '"')
	start := c.i
	for c.i < len(c.s) {
		s, i := c.s, c.i
		for i < len(s) && s[i] < utf8.RuneSelf && plainASCII[s[i]] {
			i++
		}
		c.i = i
		if i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			c.out = append(c.out, c.s[start:c.i]...)
			switch {
			case b == '"':
				c.i++
				c.out = append(c.out, '"')
				return
			case b == '\\':
				c.escape()
			case b < 0x20: // JSON has no raw control characters
				c.ok = false
			default:
				c.i++
				c.char(rune(b))
			}
			if !c.ok {
				return
			}
			start = c.i
			continue
		}
		r, size := utf8.DecodeRuneInString(c.s[c.i:])
		switch {
		case r == utf8.RuneError && size == 1:
			c.ok = false // invalid UTF-8: Decode declines to encoding/json, which makes it U+FFFD
			return
		case r == '\u2028' || r == '\u2029':
			c.out = append(c.out, c.s[start:c.i]...)
			c.out = append(c.out, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			c.i += size
			start = c.i
		default:
			c.i += size
		}
	}
	c.ok = false
}

// char writes an ASCII character of a string's value.
func (c *canonText) char(r rune) {
	b := byte(r)
	if plainASCII[b] {
		c.out = append(c.out, b)
		return
	}
	switch b {
	case '"', '\\':
		c.out = append(c.out, '\\', b)
	case '\n':
		c.out = append(c.out, '\\', 'n')
	case '\r':
		c.out = append(c.out, '\\', 'r')
	case '\t':
		c.out = append(c.out, '\\', 't')
	case '<', '>', '&':
		c.out = append(c.out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
	default:
		c.ok = false // another control character: left to Decode and marshal
	}
}

// escape reads a backslash escape and writes the character it stands for.
func (c *canonText) escape() {
	if c.i+1 >= len(c.s) {
		c.ok = false
		return
	}
	e := c.s[c.i+1]
	c.i += 2
	switch e {
	case '"', '\\', '/':
		c.char(rune(e))
	case 'n':
		c.char('\n')
	case 'r':
		c.char('\r')
	case 't':
		c.char('\t')
	case 'u':
		r, ok := c.hex4()
		switch {
		case !ok || r >= 0xD800 && r < 0xE000: // surrogates: left to Decode
			c.ok = false
		case r < utf8.RuneSelf:
			c.char(r)
		case r == '\u2028' || r == '\u2029':
			c.out = append(c.out, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
		default:
			c.out = utf8.AppendRune(c.out, r)
		}
	default:
		c.ok = false // \b, \f: control characters, left to Decode and marshal
	}
}

func (c *canonText) hex4() (rune, bool) {
	if len(c.s)-c.i < 4 {
		return 0, false
	}
	var r rune
	for _, b := range []byte(c.s[c.i : c.i+4]) {
		switch {
		case b >= '0' && b <= '9':
			b -= '0'
		case b >= 'a' && b <= 'f':
			b -= 'a' - 10
		case b >= 'A' && b <= 'F':
			b -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(b)
	}
	c.i += 4
	return r, true
}

// array reads [value, ...]; c.s[c.i] is '['.
func (c *canonText) array(depth int) {
	c.i++
	if depth > maxFastDepth {
		c.ok = false
		return
	}
	c.out = append(c.out, '[')
	if c.next(']') {
		c.out = append(c.out, ']')
		return
	}
	for first := true; c.ok; first = false {
		if !first {
			c.out = append(c.out, ',')
		}
		c.value(depth)
		if !c.ok {
			return
		}
		if c.next(']') {
			c.out = append(c.out, ']')
			return
		}
		if !c.next(',') {
			c.ok = false
		}
	}
}

// number reads an integer as fastText.number does and writes it as Decode
// keeps it (its digits; -0 as 0); anything else declines.
func (c *canonText) number() {
	start := c.i
	if c.s[c.i] == '-' {
		c.i++
	}
	switch {
	case c.i < len(c.s) && c.s[c.i] == '0':
		c.i++
	case c.i < len(c.s) && c.s[c.i] >= '1' && c.s[c.i] <= '9':
		for c.i < len(c.s) && c.s[c.i] >= '0' && c.s[c.i] <= '9' {
			c.i++
		}
	default:
		c.ok = false
		return
	}
	if c.i < len(c.s) {
		switch c.s[c.i] {
		case '.', 'e', 'E':
			c.ok = false
			return
		}
	}
	text := c.s[start:c.i]
	if text == "-0" {
		text = "0"
	}
	if len(text) > 18 {
		_, errI := strconv.ParseInt(text, 10, 64)
		_, errU := strconv.ParseUint(text, 10, 64)
		if errI != nil && errU != nil {
			c.ok = false
			return
		}
	}
	c.out = append(c.out, text...)
}

// Canonical is AppendCanonical's result as a string, remembered: events
// never change, so a page read again (the newest page of an account, most
// of all) meets the same texts again, and a map lookup (hashing and
// comparing the text, ~50 ns) replaces the walk (~450 ns for a create's
// changes as SQLite keeps them, ~700 ns as jsonb prints them) and the copy.
// The memo is a function's (text to its canonical form, whatever the row),
// so it holds for any store and any account; it keeps up to memoBytes of
// texts and starts over when full.
func Canonical(text string) (string, error) {
	if s, ok := memo.get(text); ok {
		return s, nil
	}
	bp := canonBuffers.Get().(*canonBuffer) //nolint:forcetypeassert // the pool holds only these
	defer canonBuffers.Put(bp)
	b, err := appendCanonical(bp.out[:0], text, &bp.scratch)
	bp.out = b[:0]
	if err != nil {
		return "", err
	}
	s := string(b)
	key := s // SQLite's text is the canonical form: one string for both
	if text != s {
		key = strings.Clone(text) // not text itself, which may be cut from a whole row
	}
	memo.put(key, s)
	return s, nil
}

// canonBuffer is Canonical's output and sort buffers, reused.
type canonBuffer struct{ out, scratch []byte }

var canonBuffers = sync.Pool{New: func() any { return &canonBuffer{out: make([]byte, 0, 1024)} }}

// memoBytes bounds the texts the memo keeps (keys and values): some 20 000
// events' changes of a key's create.
const memoBytes = 8 << 20

var memo = canonMemo{m: map[string]string{}}

type canonMemo struct {
	mu    sync.RWMutex
	m     map[string]string
	bytes int
}

func (c *canonMemo) get(text string) (string, bool) {
	c.mu.RLock()
	s, ok := c.m[text]
	c.mu.RUnlock()
	return s, ok
}

func (c *canonMemo) put(key, s string) {
	n := len(key) + len(s)
	if key == s {
		n = len(s)
	}
	if n > memoBytes/64 {
		return // a text this large is not worth a 64th of the memo
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.bytes+n > memoBytes {
		c.m, c.bytes = map[string]string{}, 0
	}
	if _, ok := c.m[key]; !ok {
		c.m[key] = s
		c.bytes += n
	}
}
