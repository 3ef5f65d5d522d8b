// Package auditrow is what both stores do alike to keep an audit event.
//
// Changes are kept as JSON that, read back, encodes to the same bytes, so
// that the event's hash still verifies. PostgreSQL's jsonb does not keep the
// text it was given (numbers are reformatted: 1e+21 comes back as
// 1000000000000000000000, -0 as 0), and encoding/json decodes every number to
// float64 (losing integers past 2^53), so both the value sealed and the value
// read back go through Decode, whose numbers have one form whatever the text.
package auditrow

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// Prepare readies e for sealing in mode's store and returns the JSON of its
// changes to store. The mode is the store's: an event says which chain it
// belongs to, so one meant for the other mode is refused rather than chained
// here ("" takes the store's). e.Changes becomes what reads will return
// (see Decode), so that the hash Seal computes is the one Verify recomputes.
func Prepare(e *audit.Event, mode apikey.Mode) ([]byte, error) {
	switch {
	case e.ID == "":
		return nil, errors.New("audit event without an id")
	case e.AccountID == "":
		return nil, fmt.Errorf("audit event %s without an account", e.ID)
	case e.Mode == "":
		e.Mode = mode
	case e.Mode != mode:
		return nil, fmt.Errorf("audit event %s of mode %q appended in the %q store", e.ID, e.Mode, mode)
	}
	b, norm, err := Encode(e.Changes)
	if err != nil {
		return nil, err
	}
	e.Changes = norm
	return b, nil
}

// Encode returns m's JSON (nil is {}) and m as the stores give it back: the
// value to seal, so that the hash computed now is the one verified later.
//
// What the use cases record (strings, bools, nulls, integers, maps and lists
// of them) is converted directly to what Decode would give and encoded once;
// anything else (a float, invalid UTF-8, another type) takes the round trip
// through JSON.
func Encode(m map[string]any) ([]byte, map[string]any, error) {
	if m == nil {
		m = map[string]any{}
	}
	if norm, ok := direct(m); ok {
		b, err := marshal(norm)
		if err != nil {
			return nil, nil, fmt.Errorf("audit changes: %w", err)
		}
		return b, norm.(map[string]any), nil
	}
	return roundTrip(m)
}

// roundTrip is Encode by way of JSON: encode, read back as Decode does, and
// encode what was read.
func roundTrip(m map[string]any) ([]byte, map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, nil, fmt.Errorf("audit changes: %w", err)
	}
	norm, err := Decode(b)
	if err != nil {
		return nil, nil, err
	}
	// Encode what is sealed, so the row holds exactly the hashed text.
	if b, err = json.Marshal(norm); err != nil {
		return nil, nil, fmt.Errorf("audit changes: %w", err)
	}
	return b, norm, nil
}

// Decode reads a JSON object into maps, slices, strings, bools, nils and
// numbers: an integer that fits in 64 bits as a json.Number of its plain
// decimal digits (exact), any other number as a float64 (as encoding/json
// writes a float64, so jsonb's reformatting does not show).
func Decode(b []byte) (map[string]any, error) {
	if m, ok := fastDecode(string(b)); ok {
		return m, nil
	}
	return decodeJSON(b)
}

// decodeJSON is Decode by encoding/json: what fastDecode declines, and the
// reference it is held to.
func decodeJSON(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("audit changes: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("audit changes: data after the object")
	}
	if m == nil {
		return nil, errors.New("audit changes: not an object")
	}
	for k, v := range m {
		m[k] = number(v)
	}
	return m, nil
}

func number(v any) any {
	switch v := v.(type) {
	case map[string]any:
		for k, e := range v {
			v[k] = number(e)
		}
	case []any:
		for i, e := range v {
			v[i] = number(e)
		}
	case json.Number:
		s := v.String()
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(strconv.FormatInt(i, 10)) // "-0" is "0", as in jsonb
			}
			if u, err := strconv.ParseUint(s, 10, 64); err == nil {
				return json.Number(strconv.FormatUint(u, 10))
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || math.IsInf(f, 0) {
			return v // not from encoding/json, which writes no infinities; keep the text
		}
		if f == 0 {
			f = 0 // no negative zero: jsonb has none
		}
		return f
	}
	return v
}

// direct returns v as Decode would read it back from json.Marshal's text,
// for the values whose text and reading are plain (see Encode): false for
// any other, which then takes the round trip. A valid UTF-8 string reads back
// as itself, an integer as its decimal digits (number), nil maps and lists as
// null; maps come back as map[string]any, lists as []any.
func direct(v any) (any, bool) {
	switch v := v.(type) {
	case nil:
		return nil, true
	case bool:
		return v, true
	case string:
		return v, utf8.ValidString(v)
	case int:
		return json.Number(strconv.FormatInt(int64(v), 10)), true
	case int64:
		return json.Number(strconv.FormatInt(v, 10)), true
	case []string:
		if v == nil {
			return nil, true
		}
		out := make([]any, len(v))
		for i, e := range v {
			if !utf8.ValidString(e) {
				return nil, false
			}
			out[i] = e
		}
		return out, true
	case map[string]string:
		if v == nil {
			return nil, true
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			if !utf8.ValidString(k) || !utf8.ValidString(e) {
				return nil, false
			}
			out[k] = e
		}
		return out, true
	case map[string][]string:
		return directMap(v)
	case map[string]any:
		return directMap(v)
	case []any:
		if v == nil {
			return nil, true
		}
		out := make([]any, len(v))
		for i, e := range v {
			n, ok := direct(e)
			if !ok {
				return nil, false
			}
			out[i] = n
		}
		return out, true
	}
	return nil, false
}

// directMap is direct for a map whose values direct reads one by one.
func directMap[V any](m map[string]V) (any, bool) {
	if m == nil {
		return nil, true
	}
	out := make(map[string]any, len(m))
	for k, e := range m {
		n, ok := direct(e)
		if !ok || !utf8.ValidString(k) {
			return nil, false
		}
		out[k] = n
	}
	return out, true
}
