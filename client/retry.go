package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// retryDoer retries only what is safe to repeat:
//
//   - any request after a 429 (the server rejected it before doing anything)
//     or a refused connection (nothing was sent);
//
//   - GET and DELETE requests, and verify (a POST that changes nothing),
//     also after a timeout or a connection that broke (reset, closed early):
//     reading or verifying twice changes nothing, and deleting twice is
//     idempotent by contract (the second delete answers 200 with the deleted
//     key).
//
//   - a request with an Idempotency-Key (create and regenerate send one by
//     default) also after a timeout, a broken connection, 502, 503 or 504,
//     and after a 409 with Retry-After (the first attempt is still running):
//     the server replays the first attempt's answer instead of running it
//     again.
//
// A POST or PATCH without an Idempotency-Key whose connection broke or timed
// out after sending is never retried: a create or regenerate may have
// happened, and repeating it would issue another secret; an update may have
// happened too, and the caller should read the key to know (GetAPIKey).
// Nothing is retried once the request's context is done.
type retryDoer struct {
	c       *http.Client
	max     int
	maxWait time.Duration
}

// idempotent reports whether repeating req after an unknown outcome is safe:
// GET, HEAD, DELETE, and the requests that change nothing whatever their
// method (verify is a POST), marked by repeatable.
func idempotent(req *http.Request) bool {
	switch req.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete:
		return true
	}
	return keyed(req) || req.Context().Value(repeatableKey{}) != nil
}

// keyed reports whether req carries an Idempotency-Key: the server then runs
// it at most once, whatever happens to its answers.
func keyed(req *http.Request) bool { return req.Header.Get("Idempotency-Key") != "" }

type repeatableKey struct{}

// repeatable marks the request made with ctx as safe to repeat after an
// unknown outcome: it changes nothing.
func repeatable(ctx context.Context) context.Context {
	return context.WithValue(ctx, repeatableKey{}, true)
}

// transient reports whether a transport error may go away on its own: a
// timeout, or a connection that broke. (Certificate and URL errors do not.)
func transient(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var op *net.OpError
	return errors.As(err, &op)
}

// Do sends req, retrying what is safe, and types what fails: the error of a
// request that got no answer, and of reading its body, is a *TransportError.
func (d *retryDoer) Do(req *http.Request) (*http.Response, error) {
	res, err := d.do(req)
	if err != nil {
		return res, transportError(req, err)
	}
	if res != nil && res.Body != nil {
		res.Body = &bodyReader{ReadCloser: res.Body, req: req}
	}
	return res, nil
}

func (d *retryDoer) do(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		res, err := d.c.Do(req)
		backoff := time.Duration(100<<attempt) * time.Millisecond
		var wait time.Duration
		switch {
		case err != nil && req.Context().Err() != nil:
			return res, err
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			wait = backoff
		case err != nil && idempotent(req) && transient(err):
			wait = backoff
		case err == nil && keyed(req) && (res.StatusCode == http.StatusBadGateway ||
			res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusGatewayTimeout):
			wait = backoff
		case err == nil && keyed(req) && res.StatusCode == http.StatusConflict && res.Header.Get("Retry-After") != "":
			wait = retryAfter(res)
		case err == nil && res.StatusCode == http.StatusTooManyRequests:
			wait = retryAfter(res)
		default:
			return res, err
		}
		if attempt >= d.max || wait > d.maxWait || (req.Body != nil && req.GetBody == nil) {
			return res, err
		}
		if res != nil {
			_ = res.Body.Close() // an answer being retried: its body is unread and unwanted
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, &url.Error{Op: urlOp(req.Method), URL: redactedURL(req.URL), Err: req.Context().Err()}
		case <-t.C:
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			req.Body = body
		}
	}
}

// retryAfter is what res's Retry-After asks for (1 s when unreadable).
func retryAfter(res *http.Response) time.Duration {
	s, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		s = 1
	}
	return time.Duration(s) * time.Second
}

// urlOp is the Op net/http gives a *url.Error: "Get", "Post", …
func urlOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}
