package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// countingServer answers every request with a key and counts them; bodies
// keeps what each request sent.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int32, *[]string) {
	t.Helper()
	var n atomic.Int32
	var bodies []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies = append(bodies, string(b))
		body := `{"message":"success","success":true,"data":` + viewJSON("key_a") + `}`
		if strings.HasSuffix(r.URL.Path, "/regenerate") || r.Method == http.MethodPost {
			body = key200
		}
		if r.URL.Path == "/v1/api-keys/" || r.URL.Path == "/v1/audit-events" {
			if r.Method == http.MethodGet {
				body = `{"message":"success","success":true,"data":{"object":"list","data":[],"has_more":false,"next_cursor":null}}`
			}
		}
		writeJSON(w, 200, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &n, &bodies
}

func wantArgumentError(t *testing.T, what string, err error, name string) {
	t.Helper()
	var ae *client.ArgumentError
	if !errors.Is(err, client.ErrInvalidArgument) || !errors.As(err, &ae) || ae.Name != name {
		t.Fatalf("%s: %v, want an *ArgumentError for %s", what, err, name)
	}
	var apiErr *client.Error
	var te *client.TransportError
	if errors.As(err, &apiErr) || errors.As(err, &te) || errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("%s: %v is also another kind of error", what, err)
	}
}

// A grace period the API cannot express (not whole minutes), or would refuse
// (negative, over 7 days), is refused before any request; one it can is sent
// as whole minutes.
func TestGracePeriodRefusedBeforeAnyRequest(t *testing.T) {
	srv, requests, bodies := countingServer(t)
	c, err := client.New(srv.URL+"/v1", "sk_test_x")
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []time.Duration{
		30 * time.Second, 90 * time.Second, time.Nanosecond, time.Hour + time.Millisecond,
		-time.Minute, -time.Nanosecond,
		client.MaxGracePeriod + time.Minute, 8 * 24 * time.Hour, client.MaxGracePeriod + time.Second, 1<<63 - 1,
	} {
		t.Run("refused "+d.String(), func(t *testing.T) {
			_, err := c.RegenerateAPIKey(ctx, "key_a", client.WithGracePeriod(d))
			wantArgumentError(t, d.String(), err, "WithGracePeriod")
			var ae *client.ArgumentError
			errors.As(err, &ae)
			if ae.Value != d || !strings.Contains(err.Error(), d.String()) {
				t.Fatalf("%v does not say which value: %#v", err, ae)
			}
			// Whatever comes with it, and in any order.
			_, err = c.RegenerateAPIKey(ctx, "key_a", client.WithGracePeriod(time.Hour), client.WithGracePeriod(d))
			wantArgumentError(t, d.String()+" after a valid one", err, "WithGracePeriod")
			_, err = c.RegenerateAPIKey(ctx, "key_a", client.WithGracePeriod(d), client.WithGracePeriod(time.Hour))
			wantArgumentError(t, d.String()+" before a valid one", err, "WithGracePeriod")
			if n := requests.Load(); n != 0 {
				t.Fatalf("%d requests sent for a refused grace period", n)
			}
		})
	}
	for d, body := range map[time.Duration]string{
		0:                     `{"grace_period_minutes":0}`,
		time.Minute:           `{"grace_period_minutes":1}`,
		90 * time.Minute:      `{"grace_period_minutes":90}`,
		client.MaxGracePeriod: `{"grace_period_minutes":10080}`,
	} {
		*bodies = nil
		if _, err := c.RegenerateAPIKey(ctx, "key_a", client.WithGracePeriod(d)); err != nil {
			t.Fatalf("%v: %v", d, err)
		}
		if len(*bodies) != 1 || (*bodies)[0] != body {
			t.Errorf("%v sent %q, want %s", d, *bodies, body)
		}
	}
	// Without options no body is sent: the old secret stops at once.
	*bodies = nil
	if _, err := c.RegenerateAPIKey(ctx, "key_a"); err != nil || len(*bodies) != 1 || (*bodies)[0] != "" {
		t.Fatalf("no options: %q %v", *bodies, err)
	}
}

// Other arguments the API would refuse, or that would address another
// route, are refused before any request too.
func TestArgumentsRefusedBeforeAnyRequest(t *testing.T) {
	srv, requests, _ := countingServer(t)
	c, err := client.New(srv.URL+"/v1", "sk_test_x")
	if err != nil {
		t.Fatal(err)
	}
	req := client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}
	for _, tc := range []struct {
		what, name string
		call       func() error
	}{
		{"list limit -1", "ListAPIKeysOptions.Limit", func() error {
			_, err := client.Collect(c.ListAPIKeys(ctx, "acct", client.ListAPIKeysOptions{Limit: -1}))
			return err
		}},
		{"list limit 101", "ListAPIKeysOptions.Limit", func() error {
			_, err := client.Collect(c.ListAPIKeys(ctx, "acct", client.ListAPIKeysOptions{Limit: 101}))
			return err
		}},
		{"list page limit 1000", "ListAPIKeysOptions.Limit", func() error {
			_, err := c.ListAPIKeysPage(ctx, "acct", client.ListAPIKeysOptions{Limit: 1000})
			return err
		}},
		{"audit limit -5", "ListAuditEventsOptions.Limit", func() error {
			_, err := client.Collect(c.ListAuditEvents(ctx, "acct", client.ListAuditEventsOptions{Limit: -5}))
			return err
		}},
		{"audit page limit 101", "ListAuditEventsOptions.Limit", func() error {
			_, err := c.ListAuditEventsPage(ctx, "acct", client.ListAuditEventsOptions{Limit: 101})
			return err
		}},
		{"list without account", "accountID", func() error {
			_, err := client.Collect(c.ListAPIKeys(ctx, "", client.ListAPIKeysOptions{}))
			return err
		}},
		{"audit without account", "accountID", func() error {
			_, err := c.ListAuditEventsPage(ctx, "", client.ListAuditEventsOptions{})
			return err
		}},
		{"create without account", "accountID", func() error { _, err := c.CreateAPIKey(ctx, "", req); return err }},
		{"regenerate without id", "id", func() error { _, err := c.RegenerateAPIKey(ctx, ""); return err }},
		{"get without id", "id", func() error { _, err := c.GetAPIKey(ctx, ""); return err }},
		{"update without id", "id", func() error { _, err := c.UpdateAPIKey(ctx, "", client.Disable()); return err }},
		{"delete without id", "id", func() error { _, err := c.DeleteAPIKey(ctx, ""); return err }},
		{"verify without key", "key", func() error { _, err := c.VerifyKey(ctx, ""); return err }},
		{"verify a JWT-sized token", "key", func() error { _, err := c.VerifyKey(ctx, strings.Repeat("e", 513)); return err }},
		{"verify asking a permission without an action", "RequirePermissions", func() error {
			_, err := c.VerifyKey(ctx, "sk_test_x", client.RequirePermissions("payment:read", "payment"))
			return err
		}},
		{"New without token", "token", func() error { _, err := client.New(srv.URL+"/v1", ""); return err }},
		{"New without scheme", "baseURL", func() error { _, err := client.New("localhost:8080/v1", "sk_test_x"); return err }},
		{"New with ftp", "baseURL", func() error { _, err := client.New("ftp://localhost/v1", "sk_test_x"); return err }},
		{"New without host", "baseURL", func() error { _, err := client.New("http:///v1", "sk_test_x"); return err }},
		{"nil HTTP client", "WithHTTPClient", func() error {
			_, err := client.New(srv.URL+"/v1", "sk_test_x", client.WithHTTPClient(nil))
			return err
		}},
		{"negative retries", "WithRetries", func() error {
			_, err := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(-1, time.Second))
			return err
		}},
		{"negative retry wait", "WithRetries", func() error {
			_, err := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(1, -time.Second))
			return err
		}},
	} {
		t.Run(tc.what, func(t *testing.T) { wantArgumentError(t, tc.what, tc.call(), tc.name) })
	}
	if n := requests.Load(); n != 0 {
		t.Fatalf("%d requests sent for refused arguments", n)
	}
	// The bounds themselves are accepted.
	for _, limit := range []int{0, 1, client.MaxPageSize} {
		if _, err := client.Collect(c.ListAPIKeys(ctx, "acct", client.ListAPIKeysOptions{Limit: limit})); err != nil {
			t.Fatalf("limit %d: %v", limit, err)
		}
		if _, err := client.Collect(c.ListAuditEvents(ctx, "acct", client.ListAuditEventsOptions{Limit: limit})); err != nil {
			t.Fatalf("audit limit %d: %v", limit, err)
		}
	}
}

// slowServer answers after d, or when the client gives up.
func slowServer(t *testing.T, d time.Duration, requests *atomic.Int32) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // then a client that gives up closes r.Context()
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
		writeJSON(w, 200, key200)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// closedURL is a base URL where nothing listens: connections are refused.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return "http://" + addr + "/v1"
}

// dialing is a transport whose connections fail with err.
func dialing(err error) *http.Client {
	return &http.Client{Transport: &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return nil, err }}}
}

var allKinds = []client.Kind{
	client.ErrInvalidRequest, client.ErrUnauthorized, client.ErrForbidden, client.ErrNotFound, client.ErrConflict,
	client.ErrUnprocessable, client.ErrRateLimited, client.ErrServer,
	client.ErrUnavailable, client.ErrTimeout, client.ErrCanceled, client.ErrTransport,
	client.ErrInvalidArgument, client.ErrBadPage,
}

// wantTransportError checks that err is a *TransportError of kind, and of
// no other kind, that net/http's error is still reachable, and that the
// context's own error matches when the context ended the request.
func wantTransportError(t *testing.T, err error, kind client.Kind, ctxErr error) {
	t.Helper()
	var te *client.TransportError
	if !errors.As(err, &te) || te.Kind != kind || !errors.Is(err, kind) {
		t.Fatalf("%v (%T), want a *TransportError of kind %q", err, err, kind)
	}
	for _, k := range allKinds {
		if k != kind && errors.Is(err, k) {
			t.Errorf("%v also matches %q", err, k)
		}
	}
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		t.Errorf("%v is also an *Error", err)
	}
	var ue *url.Error
	if !errors.As(err, &ue) || errors.Unwrap(err) == nil {
		t.Errorf("%v: the *url.Error is not reachable", err)
	}
	if te.Method == "" || !strings.Contains(te.URL, "/v1/") || !strings.Contains(err.Error(), "hsrcpay: "+string(kind)+": "+te.Method) {
		t.Errorf("%q does not name the kind and the request (%s %s)", err, te.Method, te.URL)
	}
	for _, c := range []error{context.Canceled, context.DeadlineExceeded} {
		if got := errors.Is(err, c); got != errors.Is(c, ctxErr) {
			t.Errorf("errors.Is(%v, %v) = %v", err, c, got)
		}
	}
}

func TestTransportErrorsAreTyped(t *testing.T) {
	type call struct {
		method string
		do     func(*client.Client, context.Context) error
	}
	calls := []call{
		{"GET", func(c *client.Client, ctx context.Context) error { _, err := c.GetAPIKey(ctx, "key_a"); return err }},
		{"GET list", func(c *client.Client, ctx context.Context) error {
			_, err := client.Collect(c.ListAPIKeys(ctx, "acct", client.ListAPIKeysOptions{}))
			return err
		}},
		{"POST", func(c *client.Client, ctx context.Context) error {
			_, err := c.CreateAPIKey(ctx, "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
			return err
		}},
		{"POST regenerate", func(c *client.Client, ctx context.Context) error {
			_, err := c.RegenerateAPIKey(ctx, "key_a", client.WithGracePeriod(time.Hour))
			return err
		}},
	}
	for _, cl := range calls {
		t.Run(cl.method, func(t *testing.T) {
			t.Run("refused", func(t *testing.T) {
				c, _ := client.New(closedURL(t), "sk_test_x", client.WithRetries(1, time.Second))
				wantTransportError(t, cl.do(c, context.Background()), client.ErrUnavailable, nil)
			})
			t.Run("reset", func(t *testing.T) {
				c, _ := client.New("http://127.0.0.1:1/v1", "sk_test_x", client.WithRetries(0, 0),
					client.WithHTTPClient(dialing(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNRESET})))
				wantTransportError(t, cl.do(c, context.Background()), client.ErrUnavailable, nil)
			})
			t.Run("unknown host", func(t *testing.T) {
				c, _ := client.New("http://api.hsrcpay.invalid/v1", "sk_test_x", client.WithRetries(0, 0),
					client.WithHTTPClient(dialing(&net.OpError{Op: "dial", Net: "tcp",
						Err: &net.DNSError{Err: "no such host", Name: "api.hsrcpay.invalid", IsNotFound: true}})))
				wantTransportError(t, cl.do(c, context.Background()), client.ErrUnavailable, nil)
			})
			t.Run("client timeout", func(t *testing.T) {
				var n atomic.Int32
				srv := slowServer(t, 2*time.Second, &n)
				c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(0, 0),
					client.WithHTTPClient(&http.Client{Timeout: 50 * time.Millisecond}))
				// net/http's timeout error matches context.DeadlineExceeded too.
				wantTransportError(t, cl.do(c, context.Background()), client.ErrTimeout, context.DeadlineExceeded)
			})
			t.Run("context deadline", func(t *testing.T) {
				var n atomic.Int32
				srv := slowServer(t, 2*time.Second, &n)
				c, _ := client.New(srv.URL+"/v1", "sk_test_x")
				ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
				defer cancel()
				wantTransportError(t, cl.do(c, ctx), client.ErrTimeout, context.DeadlineExceeded)
			})
			t.Run("cancelled in flight", func(t *testing.T) {
				var n atomic.Int32
				srv := slowServer(t, 2*time.Second, &n)
				c, _ := client.New(srv.URL+"/v1", "sk_test_x")
				ctx, cancel := context.WithCancel(context.Background())
				time.AfterFunc(50*time.Millisecond, cancel)
				wantTransportError(t, cl.do(c, ctx), client.ErrCanceled, context.Canceled)
				if n.Load() != 1 {
					t.Errorf("%d requests", n.Load())
				}
			})
			t.Run("cancelled before", func(t *testing.T) {
				var n atomic.Int32
				srv := slowServer(t, 0, &n)
				c, _ := client.New(srv.URL+"/v1", "sk_test_x")
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				wantTransportError(t, cl.do(c, ctx), client.ErrCanceled, context.Canceled)
				if n.Load() != 0 {
					t.Errorf("%d requests", n.Load())
				}
			})
			t.Run("cancelled with a cause", func(t *testing.T) {
				var n atomic.Int32
				srv := slowServer(t, 2*time.Second, &n)
				c, _ := client.New(srv.URL+"/v1", "sk_test_x")
				ctx, cancel := context.WithCancelCause(context.Background())
				time.AfterFunc(50*time.Millisecond, func() { cancel(errors.New("shutting down")) })
				wantTransportError(t, cl.do(c, ctx), client.ErrCanceled, context.Canceled)
			})
			t.Run("TLS certificate", func(t *testing.T) {
				srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
				srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshake fails on purpose
				srv.StartTLS()
				defer srv.Close()
				c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(0, 0))
				wantTransportError(t, cl.do(c, context.Background()), client.ErrTransport, nil)
			})
		})
	}
}

// A connection that breaks while the body is read is typed as well (the
// headers had come: nothing is retried).
func TestBrokenBodyIsTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, err := w.(http.Hijacker).Hijack()
		if err != nil {
			return
		}
		if _, err := buf.WriteString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"message\":"); err != nil {
			t.Error(err)
		}
		if err := buf.Flush(); err != nil {
			t.Error(err)
		}
		_ = conn.Close() // mid-body: the break the client must type
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(0, 0))
	_, err := c.GetAPIKey(context.Background(), "key_a")
	wantTransportError(t, err, client.ErrUnavailable, nil)
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("%v: io.ErrUnexpectedEOF is not reachable", err)
	}
}

// A wait for Retry-After that the context's deadline cuts is a timeout.
func TestRetryWaitCutByTheContext(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "10")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(3, time.Minute))
	for _, tc := range []struct {
		ctx    func() (context.Context, context.CancelFunc)
		kind   client.Kind
		ctxErr error
	}{
		{func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 50*time.Millisecond)
		},
			client.ErrTimeout, context.DeadlineExceeded},
		{func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			return ctx, cancel
		}, client.ErrCanceled, context.Canceled},
	} {
		ctx, cancel := tc.ctx()
		_, err := c.GetAPIKey(ctx, "key_a")
		cancel()
		wantTransportError(t, err, tc.kind, tc.ctxErr)
	}
}

// The Kind values print as what they are, in messages and in godoc.
func TestKindsPrintReadably(t *testing.T) {
	want := map[client.Kind]string{
		client.ErrInvalidRequest:  "hsrcpay: invalid request",
		client.ErrUnauthorized:    "hsrcpay: unauthorized",
		client.ErrForbidden:       "hsrcpay: forbidden",
		client.ErrNotFound:        "hsrcpay: not found",
		client.ErrConflict:        "hsrcpay: conflict",
		client.ErrUnprocessable:   "hsrcpay: unprocessable",
		client.ErrRateLimited:     "hsrcpay: rate limited",
		client.ErrServer:          "hsrcpay: server error",
		client.ErrUnavailable:     "hsrcpay: unavailable",
		client.ErrTimeout:         "hsrcpay: timeout",
		client.ErrCanceled:        "hsrcpay: canceled",
		client.ErrTransport:       "hsrcpay: transport failure",
		client.ErrInvalidArgument: "hsrcpay: invalid argument",
		client.ErrBadPage:         "hsrcpay: inconsistent pagination from the server",
	}
	if len(want) != len(allKinds) {
		t.Fatalf("%d kinds printed, %d known", len(want), len(allKinds))
	}
	for _, k := range allKinds {
		for _, got := range []string{fmt.Sprint(k), fmt.Sprintf("%v", k), fmt.Sprintf("%s", k), k.Error(), fmt.Sprint(error(k))} { //nolint:staticcheck // S1025: what fmt's %s prints is the point
			if got != want[k] {
				t.Errorf("%q prints %q, want %q", string(k), got, want[k])
			}
		}
		if !errors.Is(fmt.Errorf("wrapped: %w", k), k) {
			t.Errorf("%q does not match itself wrapped", k)
		}
	}
	// The error values print their kind and what went wrong.
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&client.Error{StatusCode: 409, Code: client.CodeDuplicateName, Message: "Name taken", RequestID: "req_1"},
			"hsrcpay: 409 Name taken (code 40900): request_id=req_1"},
		{&client.ArgumentError{Name: "WithGracePeriod", Value: 30 * time.Second, Reason: "whole minutes"},
			"hsrcpay: invalid argument: WithGracePeriod 30s: whole minutes"},
		{&client.ArgumentError{Name: "id", Value: "", Reason: "must not be empty"},
			`hsrcpay: invalid argument: id "": must not be empty`},
		{&client.TransportError{Kind: client.ErrTimeout, Method: "GET", URL: "http://h/v1/api-keys/k",
			Err: &url.Error{Op: "Get", URL: "http://h/v1/api-keys/k", Err: context.DeadlineExceeded}},
			"hsrcpay: timeout: GET http://h/v1/api-keys/k: context deadline exceeded"},
		{&client.AuditChainError{AccountID: "acct", Mode: "test", Seq: 3, Reason: "gone"},
			"hsrcpay: audit chain of account acct (test) broken at seq 3: gone"},
	} {
		if got := fmt.Sprint(tc.err); got != tc.want {
			t.Errorf("%#v prints %q, want %q", tc.err, got, tc.want)
		}
	}
}

// Each answer status matches exactly the kind its family documents.
func TestStatusKinds(t *testing.T) {
	for status, kind := range map[int]client.Kind{
		400: client.ErrInvalidRequest, 405: client.ErrInvalidRequest, 413: client.ErrInvalidRequest, 415: client.ErrInvalidRequest,
		401: client.ErrUnauthorized, 403: client.ErrForbidden, 404: client.ErrNotFound, 409: client.ErrConflict,
		422: client.ErrUnprocessable, 429: client.ErrRateLimited, 500: client.ErrServer, 502: client.ErrServer, 503: client.ErrServer,
		418: "",
	} {
		err := &client.Error{StatusCode: status}
		for _, k := range allKinds {
			if got := errors.Is(err, k); got != (k == kind) {
				t.Errorf("status %d: errors.Is(%q) = %v", status, k, got)
			}
		}
	}
}
