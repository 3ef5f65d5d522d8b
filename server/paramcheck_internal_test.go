package server

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"pgregory.net/rapid"
)

// The path parameters' fast path (paramcheck.go) against kin-openapi, the
// reference, as TestBodyCheckMatchesKin holds the bodies': for every
// operation it compiles, a value it accepts kin-openapi accepts (sound:
// nothing the spec refuses gets through), and a value kin-openapi accepts
// it accepts (none of the operation's requests is left on the slow path
// for nothing), over ids matching the pattern, lengths at and past the
// bounds, other characters, percent-escapes and any string.
func TestParamCheckMatchesKin(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for op := range spec.params {
		ops = append(ops, op)
	}
	sort.Strings(ops)
	// getApiKey at least: the hot read it was made for.
	if spec.params["getApiKey"] == nil {
		t.Fatalf("getApiKey's parameters are not compiled for the fast path (compiled: %v)", ops)
	}
	t.Logf("fast-path parameters: %v", ops)
	fast := 0
	rapid.Check(t, func(rt *rapid.T) {
		op := rapid.SampledFrom(ops).Draw(rt, "op")
		route := specRoute(rt, spec, op)
		pc := spec.params[op]
		params := map[string]string{}
		for _, p := range pc.params {
			var v string
			switch rapid.IntRange(0, 5).Draw(rt, "kind") {
			case 0, 1:
				v = rapid.StringMatching(`key_[A-Za-z0-9]{1,60}`).Draw(rt, "id")
			case 2:
				v = "key_" + strings.Repeat("a", rapid.IntRange(0, 64).Draw(rt, "n"))
			case 3:
				v = rapid.SampledFrom([]string{"key_%41", "key_a%2Fb", "key_é", "KEY_a", "key_", "key_a b", "key_a\n", "", "key_😀", "key_a.b"}).Draw(rt, "word")
			default:
				v = rapid.String().Draw(rt, "any")
			}
			if v != "" || rapid.Bool().Draw(rt, "absent") {
				params[p.name] = v
			}
		}
		ok := pc.ok(params)
		req, err := http.NewRequestWithContext(context.Background(), route.Method, "http://x"+BasePath+route.Path, http.NoBody)
		if err != nil {
			rt.Fatal(err)
		}
		opts := parameterValidation
		if route.Operation.RequestBody == nil {
			opts = requestValidation
		}
		kerr := openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, Route: route, Options: opts,
		})
		switch {
		case ok && kerr != nil:
			rt.Fatalf("%s: the fast path accepts %q, kin-openapi refuses them: %v", op, params, kerr)
		case !ok && kerr == nil:
			rt.Fatalf("%s: kin-openapi accepts %q, which the fast path leaves", op, params)
		}
		if ok {
			fast++
		}
	})
	if fast == 0 {
		t.Fatal("no generated parameter took the fast path")
	}
}

// Parameters outside the subset leave their operation on kin-openapi's
// path: another location, a style or explode, content, allowEmptyValue, a
// schema keyword the subset does not check.
func TestParamCheckRefusesOthers(t *testing.T) {
	doc := &openapi3.T{OpenAPI: "3.0.3"}
	str := func(mod func(*openapi3.Schema)) *openapi3.SchemaRef {
		s := openapi3.NewStringSchema()
		s.Pattern = "^key_[a-z]+$"
		if mod != nil {
			mod(s)
		}
		return openapi3.NewSchemaRef("", s)
	}
	base := func() *openapi3.Parameter {
		return &openapi3.Parameter{Name: "id", In: openapi3.ParameterInPath, Required: true, Schema: str(nil)}
	}
	if compileParamCheck(doc, nil, &openapi3.Operation{Parameters: openapi3.Parameters{{Value: base()}}}) == nil {
		t.Fatal("a plain path parameter was not compiled")
	}
	yes := true
	for name, mod := range map[string]func(*openapi3.Parameter){
		"query":       func(p *openapi3.Parameter) { p.In = openapi3.ParameterInQuery },
		"header":      func(p *openapi3.Parameter) { p.In = openapi3.ParameterInHeader },
		"label":       func(p *openapi3.Parameter) { p.Style = openapi3.SerializationLabel },
		"explode":     func(p *openapi3.Parameter) { p.Explode = &yes },
		"content":     func(p *openapi3.Parameter) { p.Content = openapi3.NewContentWithJSONSchema(openapi3.NewStringSchema()) },
		"allow empty": func(p *openapi3.Parameter) { p.AllowEmptyValue = true },
		"no schema":   func(p *openapi3.Parameter) { p.Schema = nil },
		"integer":     func(p *openapi3.Parameter) { p.Schema = openapi3.NewSchemaRef("", openapi3.NewIntegerSchema()) },
		"format":      func(p *openapi3.Parameter) { p.Schema = str(func(s *openapi3.Schema) { s.Format = "uuid" }) },
		"enum":        func(p *openapi3.Parameter) { p.Schema = str(func(s *openapi3.Schema) { s.Enum = []any{"key_a"} }) },
		"nullable":    func(p *openapi3.Parameter) { p.Schema = str(func(s *openapi3.Schema) { s.Nullable = true }) },
	} {
		p := base()
		mod(p)
		if compileParamCheck(doc, nil, &openapi3.Operation{Parameters: openapi3.Parameters{{Value: p}}}) != nil {
			t.Errorf("%s: compiled", name)
		}
	}
	// A second parameter of the same name (an operation's overriding its
	// path item's) is kin-openapi's to resolve.
	item := &openapi3.PathItem{Parameters: openapi3.Parameters{{Value: base()}}}
	if compileParamCheck(doc, item, &openapi3.Operation{Parameters: openapi3.Parameters{{Value: base()}}}) != nil {
		t.Error("a parameter given twice: compiled")
	}
}
