package server

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"pgregory.net/rapid"
)

// The fast path of request validation (bodycheck.go) against kin-openapi,
// the reference: over hand-picked, generated and fuzzed bodies of every
// operation it compiles,
//
//   - sound: a body it accepts is one kin-openapi accepts, with the same
//     validated value (what the strict handler binds), so it cannot let
//     through anything the spec refuses nor change what a handler sees;
//   - complete where it claims to be: a body kin-openapi accepts, without a
//     string escape or a member named twice (what it leaves to kin-openapi
//     on purpose), it accepts too, so the hot path does not fall back
//     unnoticed.
//
// Refusals are kin-openapi's alone (the fast path never refuses), so the
// error envelopes stay what the server tests and FuzzCreateBody hold them to.

// fatalT is what these checks need of *testing.T and *rapid.T.
type fatalT interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// kinBody is kin-openapi's verdict on body for op, as validateRequest asks
// for it: the validated value, or the error.
func kinBody(t fatalT, spec *Spec, op string, body []byte) (any, error) {
	t.Helper()
	route := specRoute(t, spec, op)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, "http://x/", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	err = openapi3filter.ValidateRequestBody(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, Route: route, Options: requestValidation,
	}, route.Operation.RequestBody.Value)
	if err != nil {
		return nil, err
	}
	vb, ok := req.Body.(interface{ ValidatedValue() any })
	if !ok {
		t.Fatalf("kin-openapi left no validated value")
	}
	return vb.ValidatedValue(), nil
}

func specRoute(t fatalT, spec *Spec, op string) *routers.Route {
	t.Helper()
	for _, r := range spec.routes.byEcho {
		if r.route.Operation.OperationID == op {
			return r.route
		}
	}
	t.Fatalf("no route for %s", op)
	return nil
}

// simpleBody: no string escape and no member named twice, at any depth.
func simpleBody(body []byte) bool {
	if bytes.IndexByte(body, '\\') >= 0 {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch tok {
		case json.Delim('{'):
			names := map[string]bool{}
			for dec.More() {
				name, err := dec.Token()
				if err != nil || names[name.(string)] {
					return false
				}
				names[name.(string)] = true
				if !walk() {
					return false
				}
			}
		case json.Delim('['):
			for dec.More() {
				if !walk() {
					return false
				}
			}
		default:
			// A number the fast path reads only as a plain integer of at
			// most 15 digits (a fraction, an exponent or more digits are
			// left to kin-openapi on purpose).
			if n, ok := tok.(float64); ok {
				return n == math.Trunc(n) && math.Abs(n) < 1e15 && plainInteger(body, n)
			}
			return true
		}
		_, err = dec.Token() // the closing delimiter
		return err == nil
	}
	return walk()
}

// plainInteger reports whether n appears in body spelled as the fast path
// reads integers (digits, an optional minus): bodies here hold one number.
func plainInteger(body []byte, n float64) bool {
	lit := strconv.FormatInt(int64(n), 10)
	if n == 0 && bytes.Contains(body, []byte("-0")) {
		lit = "-0"
	}
	return bytes.Contains(body, []byte(lit)) && !bytes.ContainsAny(body, ".eE")
}

// compareBodyCheck runs both validators over body and fails on any
// disagreement the contract above forbids. Bodies validateRequest refuses
// before (not UTF-8, not one JSON value) never reach either.
func compareBodyCheck(t fatalT, spec *Spec, op string, body []byte) (fast bool) {
	t.Helper()
	if !utf8.Valid(body) || !json.Valid(body) {
		return false
	}
	bc := spec.bodies[op]
	got, ok := bc.check(body)
	want, kerr := kinBody(t, spec, op, body)
	switch {
	case ok && kerr != nil:
		t.Fatalf("%s: the fast path accepts %q, kin-openapi refuses it: %v", op, body, kerr)
	case ok && !reflect.DeepEqual(got, want):
		t.Fatalf("%s: %q: the fast path's value %#v, kin-openapi's %#v", op, body, got, want)
	case !ok && kerr == nil && simpleBody(body):
		t.Fatalf("%s: kin-openapi accepts %q, which the fast path should take but leaves", op, body)
	}
	return ok
}

// The operations whose bodies the fast path takes: verify's at least (the
// hot route it was made for); a change to its schema that the subset does
// not cover would silently put verify back on the slow path.
func TestBodyCheckCompiles(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	if spec.bodies["verifyApiKey"] == nil {
		t.Fatal("verifyApiKey's body is not compiled for the fast path")
	}
	var ops []string
	for op := range spec.bodies {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	t.Logf("fast-path bodies: %v", ops)
}

// Schemas outside the subset are not compiled, whatever keyword puts them
// outside (a keyword the fast path ignored would be a check it skipped).
func TestBodyCheckRefusesUnknownKeywords(t *testing.T) {
	str := func(mut func(*openapi3.Schema)) *openapi3.Schema {
		s := openapi3.NewStringSchema()
		mut(s)
		return s
	}
	for name, s := range map[string]*openapi3.Schema{
		"enum":     str(func(s *openapi3.Schema) { s.Enum = []any{"a"} }),
		"format":   str(func(s *openapi3.Schema) { s.Format = "date-time" }),
		"nullable": str(func(s *openapi3.Schema) { s.Nullable = true }),
		"allOf": str(func(s *openapi3.Schema) {
			s.AllOf = openapi3.SchemaRefs{openapi3.NewSchemaRef("", openapi3.NewStringSchema())}
		}),
		"not":       str(func(s *openapi3.Schema) { s.Not = openapi3.NewSchemaRef("", openapi3.NewStringSchema()) }),
		"default":   str(func(s *openapi3.Schema) { s.Default = "x" }),
		"const":     str(func(s *openapi3.Schema) { s.Const = "x" }),
		"escape":    str(func(s *openapi3.Schema) { s.Pattern = `^\u0041$` }),
		"readOnly":  str(func(s *openapi3.Schema) { s.ReadOnly = true }),
		"two types": str(func(s *openapi3.Schema) { s.Type = &openapi3.Types{"string", "null"} }),
		"no type":   str(func(s *openapi3.Schema) { s.Type = nil }),
		"number":    openapi3.NewFloat64Schema(),
		"items":     openapi3.NewArraySchema().WithItems(openapi3.NewObjectSchema()),
		"free map":  openapi3.NewObjectSchema(),
	} {
		obj := openapi3.NewObjectSchema().WithProperty("p", s)
		obj.AdditionalProperties = openapi3.AdditionalProperties{Has: openapi3.Ptr(false)}
		if name == "free map" {
			obj = s
		}
		if got := compileBodySchema(obj, 0); got != nil {
			t.Errorf("%s: compiled", name)
		}
	}
	ok := openapi3.NewObjectSchema().WithProperty("p", openapi3.NewStringSchema())
	ok.AdditionalProperties = openapi3.AdditionalProperties{Has: openapi3.Ptr(false)}
	if compileBodySchema(ok, 0) == nil {
		t.Error("a plain object of strings is not compiled")
	}
}

// verifyBodySeeds are the corner cases: each keyword at its bound and one
// past it, and what the fast path leaves to kin-openapi on purpose.
func verifyBodySeeds() []string {
	key := "sk_test_" + strings.Repeat("a", 30)
	long := func(n int, c string) string { return strings.Repeat(c, n) }
	perms := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"r` + long(i+1, "a") + `":["read"]`)
		}
		b.WriteString("}")
		return b.String()
	}
	items := func(n int) string {
		out := make([]string, n)
		for i := range out {
			out[i] = `"` + long(i+1, "a") + `"`
		}
		return "[" + strings.Join(out, ",") + "]"
	}
	return []string{
		`{"key":"` + key + `"}`,
		` { "key" : "` + key + `" , "permissions" : { "payment" : [ "read" , "create" ] } } `,
		"{\n\t\"key\":\"" + key + "\",\r\n\"permissions\":{}}",
		`{"key":"` + key + `","permissions":{"payment":[]}}`,
		`{"key":"` + key + `","permissions":{"account:api:key":["create","update"],"payment":["read"]}}`,
		`{"key":""}`, `{"key":"a"}`, `{"key":"` + long(512, "a") + `"}`, `{"key":"` + long(513, "a") + `"}`,
		`{"key":"` + long(512, "é") + `"}`, `{"key":"` + long(513, "é") + `"}`,
		`{"key":"` + long(512, "😀") + `"}`, `{"key":"` + long(257, "😀") + `"}`,
		`{"key":"a","permissions":` + perms(32) + `}`, `{"key":"a","permissions":` + perms(33) + `}`,
		`{"key":"a","permissions":{"p":` + items(16) + `}}`, `{"key":"a","permissions":{"p":` + items(17) + `}}`,
		`{"key":"a","permissions":{"p":["read","read"]}}`,
		`{"key":"a","permissions":{"p":[""]}}`, `{"key":"a","permissions":{"p":["` + long(32, "a") + `"]}}`,
		`{"key":"a","permissions":{"p":["` + long(33, "a") + `"]}}`,
		`{"key":"a","permissions":{"p":["Read"]}}`, `{"key":"a","permissions":{"p":["_read"]}}`,
		`{"key":"a","permissions":{"p":["re_ad"]}}`, `{"key":"a","permissions":{"p":["read\n"]}}`,
		`{"key":"a","permissions":{"p":["réad"]}}`,
		`{"key":"a","permissions":{"":["read"]}}`,
		`{"key":"a","permissions":null}`, `{"key":null}`, `{"key":1}`, `{"key":true}`, `{"key":["a"]}`, `{"key":{}}`,
		`{"key":"a","permissions":{"p":"read"}}`, `{"key":"a","permissions":{"p":[1]}}`, `{"key":"a","permissions":{"p":null}}`,
		`{"key":"a","permissions":[]}`, `{"key":"a","permissions":{"p":[["read"]]}}`,
		`{"key":"a","extra":1}`, `{"Key":"a"}`, `{"KEY":"a"}`, `{"key":"a","Permissions":{}}`,
		`{}`, `[]`, `null`, `"key"`, `1`, ` `, ``,
		`{"key":"a","key":"b"}`, `{"key":"","key":"b"}`, `{"key":"a","permissions":{"p":["read"],"p":["x"]}}`,
		`{"key":"a\u0041"}`, `{"key":"a\"b"}`, `{"key":"a\\"}`, `{"k\u0065y":"a"}`, `{"key":"\u0000"}`,
		`{"key":"a","permissions":{"p\u0041":["read"]}}`,
		`{"key":"<script>&amp;"}`, `{"key":"a` + "\u2028" + `"}`,
		`{"key":"a","cost":0}`, `{"key":"a","cost":1000000}`, `{"key":"a","cost":1000001}`, `{"key":"a","cost":-1}`,
		`{"key":"a","cost":1.0}`, `{"key":"a","cost":1e2}`, `{"key":"a","cost":01}`, `{"key":"a","cost":-0}`,
		`{"key":"a","cost":"1"}`, `{"key":"a","cost":null}`, `{"key":"a","cost": 7 }`,
	}
}

func TestBodyCheckMatchesKinSeeds(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	fast := 0
	for _, s := range verifyBodySeeds() {
		if compareBodyCheck(t, spec, "verifyApiKey", []byte(s)) {
			fast++
		}
	}
	if fast < 10 {
		t.Fatalf("only %d seeds took the fast path", fast)
	}
}

// TestBodyCheckMatchesKin generates bodies around each compiled schema:
// members it declares or not, values of every JSON type, strings and
// arrays at and past their bounds, names repeated, escapes, white space.
func TestBodyCheckMatchesKin(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for op := range spec.bodies {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	fast := 0
	// Ten rounds of rapid's checks (100 each in make test): a body the fast
	// path takes needs every string to match its pattern and no escape, about
	// one in twenty generated, and one round alone sometimes had none.
	for range 10 {
		rapid.Check(t, func(rt *rapid.T) {
			op := rapid.SampledFrom(ops).Draw(rt, "op")
			route := specRoute(rt, spec, op)
			s := route.Operation.RequestBody.Value.Content["application/json"].Schema.Value
			body := genJSON(rt, s, 0)
			if compareBodyCheck(rt, spec, op, []byte(body)) {
				fast++
			}
		})
	}
	t.Logf("%d generated bodies took the fast path", fast)
	if fast == 0 {
		t.Fatal("no generated body took the fast path")
	}
}

// genJSON draws JSON text near schema s: mostly what it allows, often just
// past it, sometimes anything.
func genJSON(t *rapid.T, s *openapi3.Schema, depth int) string {
	ws := func() string { return rapid.SampledFrom([]string{"", "", "", " ", "\n\t"}).Draw(t, "ws") }
	if s == nil || depth > 4 || rapid.IntRange(0, 15).Draw(t, "wild") == 0 {
		return genAnyJSON(t, depth)
	}
	typ := ""
	if s.Type != nil && len(*s.Type) > 0 {
		typ = (*s.Type)[0]
	}
	switch typ {
	case openapi3.TypeInteger:
		return genInteger(t, s)
	case openapi3.TypeString:
		return genString(t, s)
	case openapi3.TypeArray:
		maxItems := 6
		if s.MaxItems != nil {
			maxItems = int(*s.MaxItems) + 2 //nolint:gosec // a small spec bound
		}
		n := rapid.IntRange(0, maxItems).Draw(t, "items")
		if s.MaxItems != nil && rapid.IntRange(0, 3).Draw(t, "atbound") == 0 {
			// At the bound, one under or one over it: distinct, valid items.
			n = int(*s.MaxItems) + rapid.IntRange(-1, 1).Draw(t, "off") //nolint:gosec // a small spec bound
			parts := make([]string, max(0, n))
			for i := range parts {
				parts[i] = `"` + distinctWord(i) + `"`
			}
			return "[" + strings.Join(parts, ",") + "]"
		}
		var parts []string
		for range n {
			var item *openapi3.Schema
			if s.Items != nil {
				item = s.Items.Value
			}
			if len(parts) > 0 && rapid.IntRange(0, 5).Draw(t, "repeat") == 0 {
				parts = append(parts, parts[rapid.IntRange(0, len(parts)-1).Draw(t, "which")])
				continue
			}
			parts = append(parts, ws()+genJSON(t, item, depth+1)+ws())
		}
		return "[" + strings.Join(parts, ",") + "]"
	case openapi3.TypeObject:
		var names []string
		for name := range s.Properties {
			names = append(names, name)
		}
		sort.Strings(names)
		var members []string
		for _, name := range names {
			if rapid.IntRange(0, 4).Draw(t, "omit") == 0 {
				continue
			}
			members = append(members, genName(t, name)+ws()+":"+ws()+genJSON(t, s.Properties[name].Value, depth+1))
		}
		var additional *openapi3.Schema
		if s.AdditionalProperties.Schema != nil {
			additional = s.AdditionalProperties.Schema.Value
		}
		maxExtra := 2
		if additional != nil {
			maxExtra = 6
			if s.MaxProps != nil && rapid.IntRange(0, 6).Draw(t, "many") == 0 {
				maxExtra = int(*s.MaxProps) + 2 //nolint:gosec // a small spec bound
			}
		}
		extra := rapid.IntRange(0, maxExtra).Draw(t, "extra")
		if additional == nil && rapid.IntRange(0, 2).Draw(t, "noextra") > 0 {
			extra = 0
		}
		for i := range extra {
			name := rapid.SampledFrom([]string{"payment", "refund", "account:api:key", "x", "", "Key", "é", "p" + strings.Repeat("q", i)}).Draw(t, "name")
			if len(names) > 0 && rapid.IntRange(0, 6).Draw(t, "dupname") == 0 {
				name = rapid.SampledFrom(names).Draw(t, "dup")
			}
			members = append(members, genName(t, name)+ws()+":"+ws()+genJSON(t, additional, depth+1))
		}
		if additional != nil && s.MaxProps != nil && rapid.IntRange(0, 3).Draw(t, "atbound") == 0 {
			// At the bound, one under or one over it: distinct names, valid values.
			n := int(*s.MaxProps) + rapid.IntRange(-1, 1).Draw(t, "off") - len(members) //nolint:gosec // a small spec bound
			for i := range max(0, n) {
				members = append(members, `"`+distinctWord(i)+`":["read"]`)
			}
		}
		if len(members) > 1 && rapid.IntRange(0, 3).Draw(t, "shuffle") == 0 {
			members[0], members[len(members)-1] = members[len(members)-1], members[0]
		}
		return ws() + "{" + ws() + strings.Join(members, ","+ws()) + ws() + "}" + ws()
	}
	return genAnyJSON(t, depth)
}

// distinctWord is the i-th of distinct lower-case words (a, b, …, z, ba, bb…),
// short and matching the permission pattern.
func distinctWord(i int) string {
	w := string(rune('a' + i%26))
	for i /= 26; i > 0; i /= 26 {
		w = string(rune('a'+i%26)) + w
	}
	return w
}

// genName writes a member name, now and then escaped.
func genName(t *rapid.T, name string) string {
	if name != "" && rapid.IntRange(0, 10).Draw(t, "escname") == 0 {
		return `"\u00` + strings.ToLower(string("0123456789ABCDEF"[name[0]>>4])+string("0123456789ABCDEF"[name[0]&15])) + name[1:] + `"`
	}
	b, _ := json.Marshal(name)
	return string(b)
}

func genString(t *rapid.T, s *openapi3.Schema) string {
	var v string
	kind := rapid.IntRange(0, 5).Draw(t, "strkind")
	if s.Pattern != "" && rapid.Bool().Draw(t, "matching") {
		// Half the strings of a pattern match it: a body whose every string
		// does (the only kind the fast path takes) must not be rare, or a
		// run of make test's 100 checks may generate none.
		kind = 0
	}
	switch kind {
	case 0:
		if s.Pattern != "" {
			v = rapid.StringMatching(s.Pattern).Draw(t, "pattern")
			break
		}
		fallthrough
	case 1:
		v = rapid.String().Draw(t, "any")
	case 2:
		n := int(s.MinLength) //nolint:gosec // a small spec bound
		if s.MaxLength != nil {
			n = int(*s.MaxLength) //nolint:gosec // a small spec bound
		}
		n += rapid.IntRange(-1, 1).Draw(t, "off")
		v = strings.Repeat(rapid.SampledFrom([]string{"a", "é", "😀", "_"}).Draw(t, "unit"), max(0, n))
	case 3:
		v = rapid.SampledFrom([]string{"read", "create", "update", "delete", "Read", "", "a_b", "a-b", "<>&", "\u2028", "\x00", `"`, `\`}).Draw(t, "word")
	default:
		v = rapid.StringMatching(`[a-z_]{0,40}`).Draw(t, "lower")
	}
	b, _ := json.Marshal(v)
	out := string(b)
	if rapid.IntRange(0, 10).Draw(t, "escape") == 0 && len(v) > 0 {
		out = `"\u0061` + out[1:] // an escaped letter in front
	}
	return out
}

// genInteger draws an integer near s's bounds, or a number spelled so that
// the fast path leaves it (a fraction, an exponent, a leading zero, too long).
func genInteger(t *rapid.T, s *openapi3.Schema) string {
	lo, hi := int64(-5), int64(1_000_000)
	if s.Min != nil {
		lo = int64(*s.Min)
	}
	if s.Max != nil {
		hi = int64(*s.Max)
	}
	switch rapid.IntRange(0, 5).Draw(t, "intkind") {
	case 0:
		return strconv.FormatInt(rapid.SampledFrom([]int64{lo - 1, lo, hi, hi + 1}).Draw(t, "bound"), 10)
	case 1:
		return rapid.SampledFrom([]string{"1.0", "1e2", "01", "-0", "1234567890123456", "0.5", "-1"}).Draw(t, "odd")
	}
	return strconv.FormatInt(rapid.Int64Range(lo, hi).Draw(t, "int"), 10)
}

func genAnyJSON(t *rapid.T, depth int) string {
	if depth > 4 {
		return "null"
	}
	switch rapid.IntRange(0, 6).Draw(t, "anykind") {
	case 0:
		return "null"
	case 1:
		return rapid.SampledFrom([]string{"true", "false"}).Draw(t, "bool")
	case 2:
		return rapid.SampledFrom([]string{"0", "-1", "1.5", "1e400", "12345678901234567890"}).Draw(t, "num")
	case 3:
		b, _ := json.Marshal(rapid.String().Draw(t, "str"))
		return string(b)
	case 4:
		n := rapid.IntRange(0, 3).Draw(t, "len")
		parts := make([]string, n)
		for i := range parts {
			parts[i] = genAnyJSON(t, depth+1)
		}
		return "[" + strings.Join(parts, ",") + "]"
	case 5:
		n := rapid.IntRange(0, 3).Draw(t, "len")
		parts := make([]string, n)
		for i := range parts {
			parts[i] = genName(t, rapid.SampledFrom([]string{"key", "permissions", "payment", "x"}).Draw(t, "n")) + ":" + genAnyJSON(t, depth+1)
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	return `""`
}

// FuzzBodyCheck holds the fast path to kin-openapi on fuzzed bodies of
// every compiled operation (the same contract as TestBodyCheckMatchesKin).
func FuzzBodyCheck(f *testing.F) {
	spec, err := LoadSpec()
	if err != nil {
		f.Fatal(err)
	}
	var ops []string
	for op := range spec.bodies {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	verify := uint8(sort.SearchStrings(ops, "verifyApiKey")) //nolint:gosec // a handful of operations
	for _, s := range verifyBodySeeds() {
		f.Add(verify, []byte(s))
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		compareBodyCheck(t, spec, ops[int(which)%len(ops)], body)
	})
}
