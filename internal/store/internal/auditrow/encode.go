package auditrow

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
)

// marshal is json.Marshal of a normalized value (what direct or Decode
// returns), byte for byte: the stores hash and keep these bytes. The
// reflection of json.Marshal over a map of interfaces (and the sorting of
// its keys through reflect.Values) was most of an audit append's own CPU, on
// the one writer goroutine SQLite's writes wait for. What it does not know
// (a float, a string that needs escaping) it leaves to json.Marshal.
func marshal(v any) ([]byte, error) {
	if b, ok := appendValue(make([]byte, 0, 256), v); ok {
		return b, nil
	}
	return json.Marshal(v)
}

func appendValue(dst []byte, v any) ([]byte, bool) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), true
	case bool:
		if v {
			return append(dst, "true"...), true
		}
		return append(dst, "false"...), true
	case string:
		return appendString(dst, v)
	case json.Number:
		if !plainInteger(string(v)) {
			return dst, false
		}
		return append(dst, v...), true
	case []any:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '[')
		for i, e := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendValue(dst, e); !ok {
				return dst, false
			}
		}
		return append(dst, ']'), true
	case map[string]any:
		if v == nil {
			return append(dst, "null"...), true
		}
		dst = append(dst, '{')
		// json.Marshal sorts a map's keys bytewise (strings.Compare).
		var room [16]string
		keys := room[:0]
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			var ok bool
			if dst, ok = appendString(dst, k); !ok {
				return dst, false
			}
			dst = append(dst, ':')
			if dst, ok = appendValue(dst, v[k]); !ok {
				return dst, false
			}
		}
		return append(dst, '}'), true
	}
	return dst, false // a float, or a type direct never returns
}

// appendString quotes s as json.Marshal does when s needs no escaping:
// valid UTF-8 without control characters, the quote, the backslash, the
// three characters json.Marshal escapes for HTML (<, >, &) and U+2028 and
// U+2029 (which it escapes for JavaScript).
func appendString(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				return dst, false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return dst, false
		}
		i += size
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"'), true
}

// plainInteger reports whether s is an integer as strconv.FormatInt writes
// it (which is how direct and Decode leave integers).
func plainInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || (s[0] == '0' && len(s) > 1) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
