package server

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

func newRoutesServer(t testing.TB) *Server {
	t.Helper()
	st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	s, err := New(Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestRouteTableCoversSpec: every operation of the spec is in the route
// table under the template Echo registered for it, and every route Echo
// serves under /v1 is an operation of the table.
func TestRouteTableCoversSpec(t *testing.T) {
	s := newRoutesServer(t)
	table := s.spec.routes
	ops := 0
	for path, item := range s.spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			r := table.bySpec[routeKey{method, path}]
			if r == nil || r.Operation.OperationID != op.OperationID {
				t.Errorf("%s %s (%s) is not in the route table", method, path, op.OperationID)
				continue
			}
			if r.Operation.Security == nil || len(*r.Operation.Security) != 0 || r.Operation.Responses != op.Responses {
				t.Errorf("%s: the table's copy differs from the spec's beyond the security check", op.OperationID)
			}
		}
	}
	echoRoutes := map[routeKey]bool{}
	for _, r := range s.echo.Routes() {
		if r.Method != echo.RouteNotFound && strings.HasPrefix(r.Path, BasePath+"/") {
			echoRoutes[routeKey{r.Method, r.Path}] = true
		}
	}
	if len(echoRoutes) != ops || len(table.byEcho) != ops {
		t.Errorf("%d operations, %d Echo routes, %d table entries", ops, len(echoRoutes), len(table.byEcho))
	}
	for k, tr := range table.byEcho {
		if !echoRoutes[k] {
			t.Errorf("the table's %s %s (%s) is no Echo route", k.method, k.path, tr.route.Operation.OperationID)
		}
	}
}

// TestRouteTableMatchesSpecRouter: for any request, the route middleware's
// answer (table, or the spec's router where the table cannot vouch) is the
// spec router's: the same operation and parameters, or the same 404/405.
// Requests: every operation with plain, escaped, empty and odd parameters,
// every method, slash variants, then random paths built from the spec's own
// segments.
func TestRouteTableMatchesSpecRouter(t *testing.T) {
	s := newRoutesServer(t)
	params := []string{"key_1", "key%201", "a%2Fb", "", "%E2%82%AC", "..", ".", "regenerate", "api-keys", "key_1%3Fx", "%7Bid%7D", "verify"}
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodHead, http.MethodOptions}
	var paths []string
	for path := range s.spec.Doc.Paths.Map() {
		for _, p := range params {
			full := BasePath + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, p)
			paths = append(paths, full, full+"/", strings.TrimSuffix(full, "/"), "/"+full, strings.ToUpper(full), full+"//")
		}
	}
	paths = append(paths, "/v1", "/v1/", "/", "/v1/api-keys//regenerate", "/v1/api-keys/x/y", "/v1/api-keys/x/regenerate/x", "/v2/api-keys/")

	// Random paths from the spec's segments and some hostile ones.
	words := []string{"v1", "api-keys", "audit-events", "regenerate", "key_1", "", "%2F", "x%20y", "verify", ".."}
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // reproducible test paths, not a secret
	for range 3000 {
		var b strings.Builder
		for range 1 + rng.IntN(5) {
			b.WriteString("/" + words[rng.IntN(len(words))])
		}
		if rng.IntN(3) == 0 {
			b.WriteString("/")
		}
		paths = append(paths, b.String())
	}

	fast := map[string]bool{} // operations the table answered
	for _, path := range paths {
		for _, method := range methods {
			req := httptest.NewRequest(method, "http://127.0.0.1"+path, nil)
			u := req.URL
			// What slashAliases does before Echo's router.
			if alias, ok := pathAliases[u.Path]; ok && u.RawPath == "" {
				u.Path = alias
			}
			c := s.echo.NewContext(req, httptest.NewRecorder())
			s.echo.Router().Find(method, echo.GetPath(req), c)

			gotRoute, gotParams, gotErr := s.findRoute(c)
			wantRoute, wantParams, wantErr := s.spec.Router.FindRoute(req)
			what := method + " " + path
			switch {
			case wantErr != nil:
				if gotErr == nil || errors.Is(wantErr, routers.ErrMethodNotAllowed) != errors.Is(gotErr, routers.ErrMethodNotAllowed) {
					t.Errorf("%s: got %v (%v), the spec's router answers %v", what, opID(gotRoute), gotErr, wantErr)
				}
			case gotErr != nil:
				t.Errorf("%s: got %v, the spec's router answers %s", what, gotErr, opID(wantRoute))
			case opID(gotRoute) != opID(wantRoute) || gotRoute.Path != wantRoute.Path || gotRoute.Method != wantRoute.Method || !maps.Equal(gotParams, wantParams):
				t.Errorf("%s: got %s %v, the spec's router answers %s %v", what, opID(gotRoute), gotParams, opID(wantRoute), wantParams)
			}
			if _, _, ok := s.spec.routes.lookup(method, c.Path(), req.URL); ok {
				fast[opID(gotRoute)] = true
			}
		}
	}
	if len(fast) != len(s.spec.routes.byEcho) {
		t.Errorf("the table answered for %d operations (%v), want all %d", len(fast), fast, len(s.spec.routes.byEcho))
	}
}

func opID(r *routers.Route) string {
	if r == nil || r.Operation == nil {
		return "<none>"
	}
	return r.Operation.OperationID
}

// TestRouteTableShadows: a path the spec's router tries first (a static
// segment where another path has a parameter) is never answered from the
// table for the other path, so the table cannot turn a 405 into another
// operation.
func TestRouteTableShadows(t *testing.T) {
	segs := func(p string) []segment {
		s, ok := parseTemplate(p)
		if !ok {
			t.Fatalf("%s: not parsed", p)
		}
		return s
	}
	byID := &tableRoute{route: &routers.Route{}, segs: segs("/v1/api-keys/{id}"), shadows: [][]segment{segs("/v1/api-keys/verify")}}
	table := &routeTable{byEcho: map[routeKey]*tableRoute{{http.MethodGet, "/v1/api-keys/:id"}: byID}}
	for path, want := range map[string]bool{"/v1/api-keys/key_1": true, "/v1/api-keys/verify": false, "/v1/api-keys/": false, "/v1/api-keys/a/b": false} {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		if _, _, ok := table.lookup(http.MethodGet, "/v1/api-keys/:id", req.URL); ok != want {
			t.Errorf("%s: answered %v, want %v", path, ok, want)
		}
	}
	if _, ok := parseTemplate("/files/{name}.json"); ok {
		t.Error("a parameter inside a segment was parsed")
	}
	if !overlaps(segs("/a/{x}"), segs("/a/b")) || overlaps(segs("/a/{x}"), segs("/b/{x}")) || overlaps(segs("/a/{x}"), segs("/a/{x}/c")) {
		t.Error("overlaps")
	}
}

// BenchmarkRouteTable compares the table's lookup with the spec's router
// for the create and regenerate routes.
func BenchmarkRouteTable(b *testing.B) {
	spec, err := LoadSpec()
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, method, path, echoPath string }{
		{"create", http.MethodPost, BasePath + "/api-keys/", BasePath + "/api-keys/"},
		{"regenerate", http.MethodPost, BasePath + "/api-keys/key_1/regenerate", BasePath + "/api-keys/:id/regenerate"},
	} {
		req := httptest.NewRequest(tc.method, tc.path, nil)
		b.Run(tc.name+"/table", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, ok := spec.routes.lookup(tc.method, tc.echoPath, req.URL); !ok {
					b.Fatal("not in the table")
				}
			}
		})
		b.Run(tc.name+"/spec_router", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := spec.Router.FindRoute(req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
