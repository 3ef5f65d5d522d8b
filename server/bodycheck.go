package server

import (
	"bytes"
	"encoding/json"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/getkin/kin-openapi/openapi3"
)

// bodyCheck accepts the request bodies it can prove valid against an
// operation's JSON schema without kin-openapi's generic walk (decoding into
// interface values through encoding/json's reflection, then visiting every
// schema keyword with a fresh settings object and error plumbing): on the
// hot routes that walk was a tenth of the request's CPU.
//
// It only ever says "valid, and this is the value kin-openapi would have
// validated" or "not sure". Anything it is not sure of — an invalid body, a
// string with an escape, a member named twice, a media type spelled other
// than exactly application/json — goes to kin-openapi as before, so every
// refusal is kin-openapi's, with the same envelope, status, code and field
// details. It handles a small subset of JSON Schema (objects with fixed
// properties and additionalProperties false or a schema; arrays of strings
// with min/maxItems and uniqueItems; strings with min/maxLength and a
// pattern; integers with minimum and maximum), read from the spec at start: a schema with any other keyword is
// not compiled, and its operation keeps the generic path. TestBodyCheckMatchesKin
// and FuzzBodyCheck hold it to kin-openapi over generated and fuzzed bodies:
// whatever it accepts kin-openapi accepts with the same value, and whatever
// kin-openapi accepts in the subset it accepts too.
type bodyCheck struct {
	root *bodySchema
}

type bodyKind uint8

const (
	kindObject bodyKind = iota + 1
	kindArray
	kindString
	kindInteger
)

// bodySchema is one compiled schema. Bounds are -1 when absent.
type bodySchema struct {
	kind bodyKind
	// string
	minLen, maxLen int64
	pattern        *regexp.Regexp
	// integer (hasMin, hasMax: whether min, max apply)
	min, max       float64
	hasMin, hasMax bool
	// array
	minItems, maxItems int64
	unique             bool
	items              *bodySchema
	// object
	props              []bodyProp
	required           []string
	minProps, maxProps int64
	// additional is the schema of members not in props; nil: none allowed
	// (additionalProperties: false).
	additional *bodySchema
}

type bodyProp struct {
	name   string
	schema *bodySchema
}

// maxBodySchemaDepth bounds compilation (a recursive schema is not compiled).
const maxBodySchemaDepth = 8

// compileBodyCheck compiles an operation's request body for the fast path:
// nil when the operation has none, or when the body's schema uses anything
// the subset does not cover. doc is the spec (3.0 only: 3.1 has its own
// validator in kin-openapi).
func compileBodyCheck(doc *openapi3.T, op *openapi3.Operation) *bodyCheck {
	if doc.IsOpenAPI31OrLater() || op == nil || op.RequestBody == nil || op.RequestBody.Value == nil {
		return nil
	}
	rb := op.RequestBody.Value
	// Only a lone application/json: the content lookup kin-openapi makes for
	// exactly that header then finds this entry and no other.
	mt := rb.Content["application/json"]
	if len(rb.Content) != 1 || mt == nil || mt.Schema == nil || mt.Schema.Value == nil || len(mt.Encoding) > 0 {
		return nil
	}
	root := compileBodySchema(mt.Schema.Value, 0)
	if root == nil || root.kind != kindObject {
		return nil
	}
	return &bodyCheck{root: root}
}

func compileBodySchema(s *openapi3.Schema, depth int) *bodySchema {
	if s == nil || depth > maxBodySchemaDepth || !onlyKnownKeywords(s) || s.Type == nil || len(*s.Type) != 1 {
		return nil
	}
	out := &bodySchema{minLen: -1, maxLen: -1, minItems: -1, maxItems: -1, minProps: -1, maxProps: -1}
	switch (*s.Type)[0] {
	case openapi3.TypeInteger:
		if len(s.Properties) > 0 || len(s.Required) > 0 || s.Items != nil || s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil ||
			s.MinItems != 0 || s.MaxItems != nil || s.UniqueItems || s.MinProps != 0 || s.MaxProps != nil ||
			s.MinLength != 0 || s.MaxLength != nil || s.Pattern != "" {
			return nil
		}
		out.kind = kindInteger
		if s.Min != nil {
			out.min, out.hasMin = *s.Min, true
		}
		if s.Max != nil {
			out.max, out.hasMax = *s.Max, true
		}
	case openapi3.TypeString:
		if len(s.Properties) > 0 || len(s.Required) > 0 || s.Items != nil || s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil ||
			s.MinItems != 0 || s.MaxItems != nil || s.UniqueItems || s.MinProps != 0 || s.MaxProps != nil {
			return nil
		}
		out.kind = kindString
		out.minLen = int64(s.MinLength)
		if s.MaxLength != nil {
			out.maxLen = int64(*s.MaxLength) //nolint:gosec // as above
		}
		if s.Pattern != "" {
			// kin-openapi compiles a pattern with regexp after rewriting
			// \uXXXX escapes; a pattern without a backslash is compiled as is.
			if strings.ContainsRune(s.Pattern, '\\') {
				return nil
			}
			re, err := regexp.Compile(s.Pattern)
			if err != nil {
				return nil
			}
			out.pattern = re
		}
	case openapi3.TypeArray:
		if len(s.Properties) > 0 || len(s.Required) > 0 || s.AdditionalProperties.Has != nil || s.AdditionalProperties.Schema != nil ||
			s.MinLength != 0 || s.MaxLength != nil || s.Pattern != "" || s.MinProps != 0 || s.MaxProps != nil || s.Items == nil {
			return nil
		}
		out.kind = kindArray
		out.items = compileBodySchema(s.Items.Value, depth+1)
		// Arrays of strings only: uniqueness is then string equality.
		if out.items == nil || out.items.kind != kindString {
			return nil
		}
		out.unique = s.UniqueItems
		out.minItems = int64(s.MinItems)
		if s.MaxItems != nil {
			out.maxItems = int64(*s.MaxItems) //nolint:gosec // as above
		}
	case openapi3.TypeObject:
		if s.Items != nil || s.MinLength != 0 || s.MaxLength != nil || s.Pattern != "" || s.MinItems != 0 || s.MaxItems != nil || s.UniqueItems {
			return nil
		}
		out.kind = kindObject
		for name, ref := range s.Properties {
			if ref == nil || ref.Value == nil || ref.Value.ReadOnly || ref.Value.WriteOnly {
				return nil
			}
			ps := compileBodySchema(ref.Value, depth+1)
			if ps == nil {
				return nil
			}
			out.props = append(out.props, bodyProp{name: name, schema: ps})
		}
		for _, r := range s.Required {
			if s.Properties[r] == nil {
				return nil // required but undeclared: leave it to kin-openapi
			}
		}
		out.required = s.Required
		switch ap := s.AdditionalProperties; {
		case ap.Has != nil && !*ap.Has && ap.Schema == nil:
			// none allowed
		case ap.Has == nil && ap.Schema != nil:
			if out.additional = compileBodySchema(ap.Schema.Value, depth+1); out.additional == nil {
				return nil
			}
		default:
			// Any member allowed (absent or true): its value would be any
			// JSON, which the subset does not decode.
			return nil
		}
		out.minProps = int64(s.MinProps)
		if s.MaxProps != nil {
			out.maxProps = int64(*s.MaxProps) //nolint:gosec // as above
		}
	default:
		return nil
	}
	return out
}

// onlyKnownKeywords reports whether s sets nothing but the keywords the
// subset checks and annotations that do not validate: any other field of
// openapi3.Schema (enum, format, nullable, allOf, a 3.1 keyword, one added
// by a later kin-openapi...) keeps the operation on the generic path.
func onlyKnownKeywords(s *openapi3.Schema) bool {
	c := *s
	c.Extensions, c.Origin, c.Title, c.Description, c.Example, c.ExternalDocs = nil, nil, "", "", nil, nil
	c.Deprecated, c.XML, c.Examples, c.Comment = false, nil, nil, ""
	c.Type = nil
	c.MinLength, c.MaxLength, c.Pattern = 0, nil, ""
	c.MinItems, c.MaxItems, c.UniqueItems, c.Items = 0, nil, false, nil
	c.Required, c.Properties, c.MinProps, c.MaxProps = nil, nil, 0, nil
	c.AdditionalProperties = openapi3.AdditionalProperties{}
	if s.Type != nil && s.Type.Is(openapi3.TypeInteger) {
		// An integer's bounds (inclusive: exclusive ones stay set), and its
		// default, an annotation only: requestValidation skips setting
		// defaults, so kin-openapi's value lacks an absent member as ours does.
		c.Min, c.Max, c.Default = nil, nil, nil
	}
	return reflect.ValueOf(c).IsZero()
}

// check returns the value kin-openapi would have decoded and validated from
// body (map[string]any, []any, string), or false when it is not sure.
// body has been checked as UTF-8 and as one JSON value (validateRequest).
func (bc *bodyCheck) check(body []byte) (any, bool) {
	sc := bodyScanner{b: body}
	sc.space()
	v, ok := sc.value(bc.root)
	if !ok {
		return nil, false
	}
	sc.space()
	return v, sc.i == len(sc.b)
}

type bodyScanner struct {
	b []byte
	i int
}

func (sc *bodyScanner) space() {
	for sc.i < len(sc.b) {
		switch sc.b[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// next consumes c (after white space) if it comes next.
func (sc *bodyScanner) next(c byte) bool {
	sc.space()
	if sc.i < len(sc.b) && sc.b[sc.i] == c {
		sc.i++
		return true
	}
	return false
}

func (sc *bodyScanner) value(s *bodySchema) (any, bool) {
	switch s.kind {
	case kindString:
		str, ok := sc.str()
		if !ok || !s.stringOK(str) {
			return nil, false
		}
		return str, true
	case kindInteger:
		return sc.integer(s)
	case kindArray:
		return sc.array(s)
	case kindObject:
		return sc.object(s)
	}
	return nil, false
}

// integer reads an integer as kin-openapi decodes it (json.Number, UseNumber)
// when it is a plain one: digits, an optional minus, no fraction or
// exponent, at most 15 digits (exact as the float64 kin-openapi compares
// with the bounds); any other number is "not sure".
func (sc *bodyScanner) integer(s *bodySchema) (any, bool) {
	sc.space()
	start := sc.i
	if sc.i < len(sc.b) && sc.b[sc.i] == '-' {
		sc.i++
	}
	digits := sc.i
	for sc.i < len(sc.b) && sc.b[sc.i] >= '0' && sc.b[sc.i] <= '9' {
		sc.i++
	}
	n := sc.i - digits
	if n == 0 || n > 15 || (n > 1 && sc.b[digits] == '0') {
		return nil, false
	}
	if sc.i < len(sc.b) && (sc.b[sc.i] == '.' || sc.b[sc.i] == 'e' || sc.b[sc.i] == 'E') {
		return nil, false
	}
	lit := string(sc.b[start:sc.i])
	v, err := strconv.ParseInt(lit, 10, 64)
	if err != nil || s.hasMin && float64(v) < s.min || s.hasMax && float64(v) > s.max {
		return nil, false
	}
	return json.Number(lit), true
}

// str reads a string without escapes (one with an escape is "not sure": the
// generic path decodes it).
func (sc *bodyScanner) str() (string, bool) {
	if !sc.next('"') {
		return "", false
	}
	start := sc.i
	end := bytes.IndexByte(sc.b[start:], '"')
	if end < 0 {
		return "", false
	}
	raw := sc.b[start : start+end]
	if bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	for _, c := range raw {
		if c < 0x20 { // not JSON; json.Valid has refused it already
			return "", false
		}
	}
	sc.i = start + end + 1
	return string(raw), true
}

// stringOK checks a string's keywords as kin-openapi does: the length in
// its UTF-16 reckoning (as its visitJSONString counts), then the pattern.
func (s *bodySchema) stringOK(v string) bool {
	if s.minLen > 0 || s.maxLen >= 0 {
		n := int64(0)
		for _, r := range v {
			if utf16.IsSurrogate(r) {
				n += 2
			} else {
				n++
			}
		}
		if n < s.minLen || s.maxLen >= 0 && n > s.maxLen {
			return false
		}
	}
	return s.pattern == nil || s.pattern.MatchString(v)
}

func (sc *bodyScanner) array(s *bodySchema) (any, bool) {
	if !sc.next('[') {
		return nil, false
	}
	out := []any{}
	if !sc.next(']') {
		for {
			v, ok := sc.value(s.items)
			if !ok {
				return nil, false
			}
			out = append(out, v)
			if s.maxItems >= 0 && int64(len(out)) > s.maxItems {
				return nil, false
			}
			if sc.next(']') {
				break
			}
			if !sc.next(',') {
				return nil, false
			}
		}
	}
	if int64(len(out)) < s.minItems {
		return nil, false
	}
	if s.unique {
		for i := range out {
			for j := range i {
				if out[i].(string) == out[j].(string) {
					return nil, false
				}
			}
		}
	}
	return out, true
}

func (sc *bodyScanner) object(s *bodySchema) (any, bool) {
	if !sc.next('{') {
		return nil, false
	}
	out := make(map[string]any, len(s.props))
	if !sc.next('}') {
		for {
			name, ok := sc.str()
			if !ok || !sc.next(':') {
				return nil, false
			}
			if _, dup := out[name]; dup {
				return nil, false // which one counts depends on the decoder: not sure
			}
			ps := s.additional
			for i := range s.props {
				if s.props[i].name == name {
					ps = s.props[i].schema
					break
				}
			}
			if ps == nil {
				return nil, false // additionalProperties: false
			}
			v, ok := sc.value(ps)
			if !ok {
				return nil, false
			}
			out[name] = v
			if s.maxProps >= 0 && int64(len(out)) > s.maxProps {
				return nil, false
			}
			if sc.next('}') {
				break
			}
			if !sc.next(',') {
				return nil, false
			}
		}
	}
	if int64(len(out)) < s.minProps {
		return nil, false
	}
	for _, r := range s.required {
		if _, ok := out[r]; !ok {
			return nil, false
		}
	}
	return out, true
}

// checkedBody is the request body once checked: the bytes, readable again,
// and the value the generated strict handler binds (it asks for
// ValidatedValue, as it does of kin-openapi's KeepValidatedValue body).
type checkedBody struct {
	bytes.Reader
	value any
}

// newCheckedBody is body, readable, with its value (one allocation).
func newCheckedBody(body []byte, value any) *checkedBody {
	b := &checkedBody{value: value}
	b.Reset(body)
	return b
}

// Close does nothing: the bytes are in memory.
func (*checkedBody) Close() error { return nil }

// ValidatedValue is the body's decoded value, as validated.
func (b *checkedBody) ValidatedValue() any { return b.value }
