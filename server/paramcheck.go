package server

import (
	"github.com/getkin/kin-openapi/openapi3"
)

// paramCheck is bodyCheck for path parameters: an operation whose only
// parameters are path parameters of a string schema in bodyCheck's subset
// (min/maxLength and a pattern), serialized the default way, has them
// checked here, and kin-openapi's walk (decoding each parameter, a schema
// visit with its settings and error plumbing: ~7 allocations and a tenth of
// a key read's server CPU outside the store) is skipped when they pass.
// Anything else — a value it does not accept, a parameter missing — goes
// to kin-openapi as before, so every refusal is kin-openapi's.
// TestParamCheckMatchesKin holds it to kin-openapi.
//
// kin-openapi checks a path parameter's value as the route's match left it
// (escaped: the spec's router is built with UseEncodedPath, and the style
// "simple" has no prefix to cut), which is the value checked here too.
type paramCheck struct {
	params []pathParam
}

type pathParam struct {
	name   string
	schema *bodySchema
}

// compileParamCheck compiles the parameters of op (on the path item item)
// for the fast path; nil when it has none, or any that is not a path
// parameter the subset covers.
func compileParamCheck(doc *openapi3.T, item *openapi3.PathItem, op *openapi3.Operation) *paramCheck {
	if doc.IsOpenAPI31OrLater() || op == nil {
		return nil
	}
	var all openapi3.Parameters
	if item != nil {
		all = append(all, item.Parameters...)
	}
	all = append(all, op.Parameters...)
	if len(all) == 0 {
		return nil
	}
	pc := &paramCheck{}
	seen := map[string]bool{}
	for _, ref := range all {
		if ref == nil || ref.Value == nil {
			return nil
		}
		p := ref.Value
		// A name given twice (an operation's overriding its path item's):
		// leave the choice to kin-openapi.
		if seen[p.Name] || p.In != openapi3.ParameterInPath || !p.Required || p.Content != nil ||
			(p.Style != "" && p.Style != openapi3.SerializationSimple) || (p.Explode != nil && *p.Explode) ||
			p.AllowEmptyValue || p.Schema == nil || p.Schema.Value == nil {
			return nil
		}
		seen[p.Name] = true
		s := compileBodySchema(p.Schema.Value, 0)
		if s == nil || s.kind != kindString {
			return nil
		}
		pc.params = append(pc.params, pathParam{name: p.Name, schema: s})
	}
	return pc
}

// ok reports whether every parameter is present and valid, as kin-openapi
// would find it; false is "not sure".
func (pc *paramCheck) ok(params map[string]string) bool {
	for _, p := range pc.params {
		v, found := params[p.name]
		if !found || v == "" || !p.schema.stringOK(v) {
			return false
		}
	}
	return true
}
