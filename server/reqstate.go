package server

import (
	"context"
	"unsafe"

	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/internal/auth"
)

// requestState is what the middlewares learn of a request and hand on to
// the next ones: its id, its route and path parameters, the stack's next
// step and why authentication failed. It is the request's context (the
// requestID middleware makes it, around the context the request came
// with), so that all of it is one allocation. It used to be Echo's
// context store: a map made per request (its first Set allocating a
// 264-byte group), four values boxed into it, and a lock for every Get
// and Set (~5 allocations and ~6% of a cached verify's CPU).
//
// Only the request's own goroutine sets its fields, before the steps that
// read them run.
type requestState struct {
	context.Context
	id string
	// idBuf holds id's bytes (id is a view of them: written once, before
	// id is made, and never again), and header the X-Request-Id value.
	idBuf  [len("req_") + 2*12]byte
	header [1]string
	route  *routers.Route
	params map[string]string
	// next is the handler the operation's stack continues with (selectStack).
	next echo.HandlerFunc
	// principal is who authenticate found the caller to be (nil: not
	// authenticated, or not yet); read through auth.FromContext.
	principal *auth.Principal
	// authReason and authDetail say why authentication failed (authFailed),
	// for the access log; authFailed tells an empty reason from none.
	authReason, authDetail string
	authFailed             bool
	// rateBuf and rateVals hold the RateLimit-* headers' values, set once
	// (setRateLimitHeaders); rateUsed: they are taken.
	rateBuf  [3 * 20]byte
	rateVals [3]string
	rateUsed bool
}

type stateKey struct{}

// Value answers stateKey with the state itself; everything else is the
// wrapped context's.
//
// Once authenticate has set the principal, it answers auth.FromContext's
// key too, for this context and every one derived from it: what
// auth.WithPrincipal around it would answer (before, nothing: as a
// context without a principal).
func (st *requestState) Value(key any) any {
	if _, ok := key.(stateKey); ok {
		return st
	}
	if st.principal != nil && auth.IsPrincipalKey(key) {
		return st.principal
	}
	return st.Context.Value(key)
}

// newRequestState wraps ctx, with the id made of the random bytes b.
func newRequestState(ctx context.Context, b [12]byte) *requestState {
	st := &requestState{Context: ctx}
	copy(st.idBuf[:], "req_")
	const hexDigits = "0123456789abcdef"
	for i, v := range b {
		st.idBuf[len("req_")+2*i] = hexDigits[v>>4]
		st.idBuf[len("req_")+2*i+1] = hexDigits[v&0x0f]
	}
	st.id = unsafe.String(&st.idBuf[0], len(st.idBuf)) //nolint:gosec // G103: idBuf is written once, above, and never after
	st.header[0] = st.id
	return st
}

// stateOf is the request's state; nil before the requestID middleware made
// it (or for a context that was not the request's).
func stateOf(c echo.Context) *requestState {
	st, _ := c.Request().Context().Value(stateKey{}).(*requestState)
	return st
}
