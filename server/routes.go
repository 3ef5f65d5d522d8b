package server

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
)

// routeTable answers, for a request Echo has already matched to one of the
// generated routes, what the spec's router (gorillamux) would: the
// operation's route and its path parameters, without running gorillamux's
// regular expressions over every path of the spec again. It is keyed by the
// method and Echo's template (c.Path(), /v1/api-keys/:id/regenerate) and
// built once from the spec; TestRouteTable holds it to the spec (every
// operation is in it) and to gorillamux (the same answer for any request).
//
// It vouches only for what it can prove: the request's escaped path (what
// gorillamux matches, as it is built with UseEncodedPath) must match the
// operation's template segment by segment (a parameter non-empty), and no
// path gorillamux tries first may match it too. Anything else — unknown
// paths and methods (404, 405 and their hints), empty parameters, a path a
// future static route would take first — goes to the spec's router, as
// every request did before.
type routeTable struct {
	byEcho map[routeKey]*tableRoute
	// bySpec is the table's route of an operation by method and spec path,
	// to replace the spec router's own copy when it answers instead.
	bySpec map[routeKey]*routers.Route
	// templates are the table's routes' full templates (BasePath + path),
	// made once for the access log.
	templates map[*routers.Route]string
}

// template is the route's full path template, /v1/api-keys/{id}.
func (t *routeTable) template(r *routers.Route) string {
	if p, ok := t.templates[r]; ok {
		return p
	}
	return BasePath + r.Path
}

type routeKey struct{ method, path string }

type tableRoute struct {
	route *routers.Route
	segs  []segment // of BasePath + the spec's path
	// params counts the parameters among segs.
	params int
	// shadows are the paths the spec's router tries before this one that
	// could match the same request path.
	shadows [][]segment
}

// segment is one /-separated part of a path template: static text, or a
// whole-segment parameter (param is its name).
type segment struct{ static, param string }

var wholeParam = regexp.MustCompile(`^\{([^{}]+)\}$`)

// parseTemplate splits a spec path; false when a segment mixes text and a
// parameter ({id}.json), which the table does not handle.
func parseTemplate(path string) ([]segment, bool) {
	if !strings.HasPrefix(path, "/") {
		return nil, false
	}
	var out []segment
	for _, part := range strings.Split(path[1:], "/") {
		if m := wholeParam.FindStringSubmatch(part); m != nil {
			out = append(out, segment{param: m[1]})
			continue
		}
		if strings.ContainsAny(part, "{}") {
			return nil, false
		}
		out = append(out, segment{static: part})
	}
	return out, true
}

// echoPath is the template Echo registers for a spec path (as oapi-codegen
// generates it): /api-keys/{id} → /api-keys/:id.
func echoPath(segs []segment) string {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if s.param != "" {
			b.WriteString(":" + s.param)
		} else {
			b.WriteString(s.static)
		}
	}
	return b.String()
}

// overlaps reports whether some path could match both templates.
func overlaps(a, b []segment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].param == "" && b[i].param == "" && a[i].static != b[i].static {
			return false
		}
	}
	return true
}

// match reports whether the escaped path matches segs, as gorillamux's
// expression for the template would (a parameter is [^/]+), and fills params
// (when not nil) with the parameters, escaped as gorillamux leaves them.
func match(segs []segment, path string, params map[string]string) bool {
	for _, sg := range segs {
		if path == "" || path[0] != '/' {
			return false
		}
		path = path[1:]
		end := strings.IndexByte(path, '/')
		if end < 0 {
			end = len(path)
		}
		v := path[:end]
		path = path[end:]
		switch {
		case sg.param == "":
			if v != sg.static {
				return false
			}
		case v == "":
			return false
		case params != nil:
			params[sg.param] = v
		}
	}
	return path == ""
}

// newRouteTable builds the table from the spec and its router (built from
// doc with the single server BasePath, as LoadSpec does).
func newRouteTable(doc *openapi3.T, router routers.Router) *routeTable {
	t := &routeTable{byEcho: map[routeKey]*tableRoute{}, bySpec: map[routeKey]*routers.Route{}, templates: map[*routers.Route]string{}}
	if len(doc.Servers) != 1 || doc.Servers[0].URL != BasePath {
		return t // the table assumes one server at BasePath: let the spec's router answer everything
	}
	order := doc.Paths.InMatchingOrder()
	var earlier [][]segment
	for _, path := range order {
		item := doc.Paths.Value(path)
		segs, ok := parseTemplate(BasePath + path)
		if !ok || len(item.Servers) > 0 {
			// Not for the table; and it may take requests from the paths
			// after it in ways the table cannot tell: stop here.
			return t
		}
		var shadows [][]segment
		for _, e := range earlier {
			if overlaps(e, segs) {
				shadows = append(shadows, e)
			}
		}
		earlier = append(earlier, segs)
		for method := range item.Operations() {
			route := tableEntry(router, path, method, segs)
			if route == nil {
				continue
			}
			n := 0
			for _, s := range segs {
				if s.param != "" {
					n++
				}
			}
			t.byEcho[routeKey{method, echoPath(segs)}] = &tableRoute{route: route, segs: segs, params: n, shadows: shadows}
			t.bySpec[routeKey{method, path}] = route
			t.templates[route] = BasePath + path
		}
	}
	return t
}

// tableEntry is the operation's route as the spec's router returns it (so
// every field is what it would be), asked with a request built from the
// template, with kin-openapi's security check left out: authenticate has
// done it, and with openapi3filter.NoopAuthenticationFunc that check only
// reads and copies the body once more. Nil when the router answers another
// path for it.
func tableEntry(router routers.Router, path, method string, segs []segment) *routers.Route {
	var b strings.Builder
	for _, s := range segs {
		b.WriteByte('/')
		if s.param != "" {
			b.WriteString("{" + s.param + "}") // a value no static segment has
		} else {
			b.WriteString(s.static)
		}
	}
	req, err := http.NewRequest(method, (&url.URL{Path: b.String()}).String(), http.NoBody) //nolint:noctx // never sent: a probe for the router
	if err != nil {
		return nil
	}
	found, _, err := router.FindRoute(req)
	if err != nil || found.Path != path || found.Method != method || found.Operation == nil {
		return nil
	}
	route := *found
	op := *found.Operation
	op.Security = &openapi3.SecurityRequirements{}
	route.Operation = &op
	return &route
}

// lookup answers for a request Echo matched to the route template echoPath;
// false when the table cannot vouch for the answer.
func (t *routeTable) lookup(method, echoPath string, u *url.URL) (*routers.Route, map[string]string, bool) {
	tr := t.byEcho[routeKey{method, echoPath}]
	if tr == nil {
		return nil, nil, false
	}
	path := u.EscapedPath()
	for _, sh := range tr.shadows {
		if match(sh, path, nil) {
			return nil, nil, false
		}
	}
	var params map[string]string // none: nil, which reads as empty
	if tr.params > 0 {
		params = make(map[string]string, tr.params)
	}
	if !match(tr.segs, path, params) {
		return nil, nil, false
	}
	return tr.route, params, true
}

// prepared replaces a route the spec's router found with the table's route
// of the same operation (the same but for the security check), if any.
func (t *routeTable) prepared(r *routers.Route) *routers.Route {
	if p := t.bySpec[routeKey{r.Method, r.Path}]; p != nil {
		return p
	}
	return r
}
