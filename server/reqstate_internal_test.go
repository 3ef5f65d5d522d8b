package server

import (
	"context"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/internal/auth"
)

// setTestState gives a hand-made Echo context the state the requestID and
// route middlewares would have given its request.
func setTestState(c echo.Context, id string, route *routers.Route, params map[string]string) {
	req := c.Request()
	st := &requestState{Context: req.Context(), id: id, route: route, params: params}
	c.SetRequest(req.WithContext(st))
}

// TestRequestState: the state rides the request's context through every
// context a later step derives from it (values, cancellation, a span's),
// and only the request's own context answers for it.
func TestRequestState(t *testing.T) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	type other struct{}
	parent, cancel := context.WithCancel(context.WithValue(context.Background(), other{}, "v"))
	st := newRequestState(parent, b)
	if len(st.id) != len("req_")+24 || st.id[:4] != "req_" || st.header[0] != st.id {
		t.Fatalf("id %q, header %q", st.id, st.header[0])
	}
	for _, c := range st.id[4:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			t.Fatalf("id %q is not lower-case hex after req_", st.id)
		}
	}
	// A second state from other bytes has its own id: the ids are views of
	// each state's own bytes.
	b[0]++
	if st2 := newRequestState(parent, b); st2.id == st.id {
		t.Fatalf("two states share the id %q", st.id)
	}
	derived, stop := context.WithCancel(context.WithValue(st, otherKey{}, 1))
	defer stop()
	if got, _ := derived.Value(stateKey{}).(*requestState); got != st {
		t.Fatal("a derived context lost the request's state")
	}
	if derived.Value(other{}) != "v" {
		t.Fatal("the state hides the values of the context it wraps")
	}
	if auth.FromContext(derived) != nil || auth.FromContext(st) != nil {
		t.Fatal("a principal before authentication set one")
	}
	p := &auth.Principal{KeyID: "key_1"}
	st.principal = p
	if auth.FromContext(derived) != p || auth.FromContext(st) != p {
		t.Fatal("the state's principal is not what auth.FromContext finds")
	}
	if q := (&auth.Principal{KeyID: "key_2"}); auth.FromContext(auth.WithPrincipal(derived, q)) != q {
		t.Fatal("a principal set around the state is hidden by the state's")
	}
	cancel()
	<-derived.Done() // the request's cancellation still reaches what derives from its state
	e := echo.New()
	c := e.NewContext(httptest.NewRequest(http.MethodGet, "/v1/x", nil), httptest.NewRecorder())
	if stateOf(c) != nil || requestID(c) != "" {
		t.Fatal("a request without state answered one")
	}
	c.SetRequest(c.Request().WithContext(st))
	if stateOf(c) != st || requestID(c) != st.id {
		t.Fatal("the request's state is not found")
	}
}

// otherKey is another package's context value, layered over the request's state.
type otherKey struct{}
