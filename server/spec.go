package server

import (
	"fmt"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/perm"
)

// BasePath is where the API is mounted; the spec's servers end in it.
const BasePath = "/v1"

// Spec is the embedded openapi.yaml with what the server derives from it.
type Spec struct {
	Doc         *openapi3.T
	Router      routers.Router
	Catalog     perm.Catalog
	Permissions map[string]string // operationId → required permission
	// Authentication is how each operation's caller proves itself, from its
	// security requirement; it picks the operation's middleware stack.
	Authentication map[string]Authentication // operationId → scheme

	routes *routeTable // Echo's matched route → the operation, without Router
	// bodies are the request bodies validateRequest checks without
	// kin-openapi when it can prove them valid (bodycheck.go), by operationId.
	bodies map[string]*bodyCheck
	// params are the operations whose parameters validateRequest checks
	// without kin-openapi when it can prove them valid (paramcheck.go).
	params map[string]*paramCheck
}

// Operation is the route the server validates req against: the spec's
// router's answer, with the route table's copy of the operation (no
// security requirement: authenticate checks credentials). For benchmarks
// and tools; the server itself asks the table first.
func (s *Spec) Operation(req *http.Request) (*routers.Route, map[string]string, error) {
	route, params, err := s.Router.FindRoute(req)
	if err != nil {
		return nil, nil, err
	}
	return s.routes.prepared(route), params, nil
}

// LoadSpec reads the spec compiled into gen/api and prepares routing,
// validation and authorization from it.
func LoadSpec() (*Spec, error) {
	doc, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("embedded spec: %w", err)
	}
	// Route on paths only: the spec's absolute server URLs name public hosts,
	// which requests to this replica do not carry.
	doc.Servers = openapi3.Servers{{URL: BasePath}}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		return nil, fmt.Errorf("embedded spec router: %w", err)
	}
	catalog, err := perm.LoadCatalog(doc)
	if err != nil {
		return nil, err
	}
	perms, err := perm.OperationPermissions(doc)
	if err != nil {
		return nil, err
	}
	authn, err := OperationAuthentication(doc)
	if err != nil {
		return nil, err
	}
	bodies, params := map[string]*bodyCheck{}, map[string]*paramCheck{}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			if bc := compileBodyCheck(doc, op); bc != nil {
				bodies[op.OperationID] = bc
			}
			if pc := compileParamCheck(doc, item, op); pc != nil {
				params[op.OperationID] = pc
			}
		}
	}
	return &Spec{Doc: doc, Router: router, Catalog: catalog, Permissions: perms, Authentication: authn,
		routes: newRouteTable(doc, router), bodies: bodies, params: params}, nil
}
