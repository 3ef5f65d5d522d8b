package server

import (
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/perm"
)

// Authentication is how an operation's caller proves itself: the name of the
// one security scheme its requirement in the spec names.
type Authentication string

const (
	// AuthBearer: an API key or a JWT in Authorization (every operation but the leak report).
	AuthBearer Authentication = perm.BearerScheme
	// AuthGitHubSignature: GitHub's secret scanning signature over the body (the leak report).
	AuthGitHubSignature Authentication = "githubSignature"
)

// stackOrder is the one place where the order of each middleware stack is
// written. Every /v1 request first passes the shared prefix (route lookup in
// the spec, then response validation when on: server.go), then the stack of
// its operation's authentication:
//
//   - bearer: authenticate → rate limit (the sender's budgets, budgetsOf)
//     → the declared permission → response validation of a sample → request
//     validation → idempotency (create and regenerate with an
//     Idempotency-Key). The budgets come before the permission so that a
//     refused request spends them too — its sender's, never an owner's: a
//     request refused spends the budget of whoever sent it (its client
//     address, or its own secret key or JWT), never that of a credential it
//     merely presented when that credential is public. A publishable key's
//     request (always refused, 403) spends the client address's
//     failed-authentication budget, not the key's nor its account's; a
//     secret key or JWT spends its own (and its account's).
//   - GitHub signature: the signature over the raw body → the client
//     address's budget of reports → response validation of a sample →
//     request validation. Nothing reads the body as JSON before the
//     signature holds.
var stackOrder = map[Authentication][]func(*Server, echo.HandlerFunc) echo.HandlerFunc{
	AuthBearer: {(*Server).authenticate, (*Server).rateLimit, (*Server).authorize,
		(*Server).sampleResponse, (*Server).validateRequest, (*Server).idempotent},
	AuthGitHubSignature: {(*Server).verifyLeakSignature, (*Server).rateLimitLeakReports,
		(*Server).sampleResponse, (*Server).validateRequest},
}

// sampleResponse checks the configured share of responses
// (Options.ResponseValidation between 0 and 1, exclusive); with none (or
// every response checked before the stacks) it is no step at all.
func (s *Server) sampleResponse(next echo.HandlerFunc) echo.HandlerFunc {
	if s.sample == nil {
		return next
	}
	return s.sample(next)
}

// Stacks lists each authentication's middleware stack by name, in order, as
// stackOrder holds it (for tests and docs).
func Stacks() map[Authentication][]string {
	out := map[Authentication][]string{}
	for a, mws := range stackOrder {
		for _, mw := range mws {
			name := runtime.FuncForPC(reflect.ValueOf(mw).Pointer()).Name()
			out[a] = append(out[a], name[strings.LastIndexByte(name, '.')+1:])
		}
	}
	return out
}

// buildStacks composes each stack once, around a last step that continues
// with the handler the request's route holds (selectStack stores it on the
// request): Echo applies route middlewares on every request, so composing
// per request would cost a closure per middleware per request.
func (s *Server) buildStacks() map[Authentication]echo.HandlerFunc {
	out := map[Authentication]echo.HandlerFunc{}
	for a, mws := range stackOrder {
		h := echo.HandlerFunc(func(c echo.Context) error {
			var next echo.HandlerFunc
			if st := stateOf(c); st != nil {
				next = st.next
			}
			if next == nil {
				return apierr.Internal(errors.New("middleware stack reached without its handler"))
			}
			return next(c)
		})
		for _, mw := range slices.Backward(mws) {
			h = mw(s, h)
		}
		out[a] = h
	}
	return out
}

// selectStack sends a routed request through its operation's stack, as the
// spec declares the operation's authentication (Spec.Authentication).
func (s *Server) selectStack(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		st := stateOf(c)
		if st == nil || st.route == nil {
			return apierr.Internal(errors.New("selectStack reached without a route"))
		}
		route := st.route
		stack, ok := s.stacks[s.spec.Authentication[route.Operation.OperationID]]
		if !ok { // LoadSpec refuses such a spec; never serve an operation unguarded
			return apierr.Internal(fmt.Errorf("operation %s has no middleware stack", route.Operation.OperationID))
		}
		st.next = next
		return stack(c)
	}
}

// OperationAuthentication reads each operation's authentication from its
// security requirement (its own, else the document's): exactly one
// requirement naming exactly one scheme that has a stack. Anything else (no
// security, `security: []`, a choice of schemes, an unknown scheme) is
// refused at start, so no operation is served without its stack.
func OperationAuthentication(doc *openapi3.T) (map[string]Authentication, error) {
	out := map[string]Authentication{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			reqs := doc.Security
			if op.Security != nil {
				reqs = *op.Security
			}
			if len(reqs) != 1 || len(reqs[0]) != 1 {
				return nil, fmt.Errorf("spec: %s %s must name exactly one security scheme (it names %d requirement(s))", method, path, len(reqs))
			}
			for name := range reqs[0] {
				a := Authentication(name)
				if _, ok := stackOrder[a]; !ok {
					return nil, fmt.Errorf("spec: %s %s uses security scheme %q, which has no middleware stack", method, path, name)
				}
				if doc.Components == nil || doc.Components.SecuritySchemes[name] == nil {
					return nil, fmt.Errorf("spec: %s %s uses security scheme %q, which components.securitySchemes lacks", method, path, name)
				}
				out[op.OperationID] = a
			}
		}
	}
	return out, nil
}
