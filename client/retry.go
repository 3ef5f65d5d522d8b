package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
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
//     and after a 409 saying the first attempt is still running (40904 with
//     replayable: true, or Retry-After): the server replays the first
//     attempt's answer instead of running it again. Such a request is
//     retried for a time (budget), not a number of times: a restart, or a
//     dead request's claim that must lapse before a retry may take it over,
//     lasts seconds whatever the count, and a caller who gives up too soon
//     loses the secret a first attempt may have issued.
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
	// budget is how long a keyed request is retried, however many attempts
	// that takes (0: keyed requests are counted against max, like the rest).
	budget time.Duration
}

// Backoff of the keyed requests retried for a time: full jitter, each wait
// drawn uniformly from 0 to min(retryCap, retryBase·2ⁿ) before retry n
// (from 0). The jitter spreads the retries of many clients that failed
// together (a restart) instead of sending them back in one burst; the cap
// keeps a client that waits out a restart from sleeping long after the
// server is back.
const (
	retryBase = 100 * time.Millisecond
	retryCap  = 2 * time.Second
)

// backoffCeiling is the longest wait before retry n: min(retryCap, retryBase·2ⁿ).
func backoffCeiling(n int) time.Duration {
	if n < 0 {
		n = 0
	}
	if n >= 16 || retryBase<<n > retryCap { // 16: far past the cap, and no overflow
		return retryCap
	}
	return retryBase << n
}

// jitteredBackoff is the wait before retry n of a keyed request: uniform in
// [0, backoffCeiling(n)]. draw(k) returns an integer in [0, k).
func jitteredBackoff(n int, draw func(int64) int64) time.Duration {
	return time.Duration(draw(int64(backoffCeiling(n)) + 1))
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
	ctx := req.Context()
	tally, _ := ctx.Value(tallyKey{}).(*attemptTally)
	if tally == nil {
		tally = &attemptTally{}
	}
	// Whether a request was sent is what net/http writes, not what it
	// returns: a request written on a kept-alive connection that then broke
	// is retried by net/http itself on a new one (it has an
	// Idempotency-Key), and that one's refusal is the error we see.
	var wrote atomic.Bool
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{WroteHeaders: func() { wrote.Store(true) }}))
	timed := d.max > 0 && d.budget > 0 && keyed(req)
	deadline := time.Now().Add(d.budget)
	for attempt := 0; ; attempt++ {
		res, err := d.c.Do(req)
		tally.attempts++
		tally.reached = tally.reached || wrote.Load()
		backoff := time.Duration(100<<min(attempt, 16)) * time.Millisecond
		if timed {
			backoff = jitteredBackoff(attempt, rand.Int64N)
		}
		var (
			wait  time.Duration
			asked bool // the server asked for wait (Retry-After): waiting less is not an option
		)
		switch {
		case err != nil && ctx.Err() != nil:
			return res, err
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			wait = backoff
		case err != nil && idempotent(req) && transient(err):
			wait, tally.unknown = backoff, true
		case err == nil && keyed(req) && (res.StatusCode == http.StatusBadGateway ||
			res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusGatewayTimeout):
			wait, tally.unknown = backoff, true
			if ra, ok := retryAfterHeader(res); ok && ra > wait {
				wait, asked = ra, true
			}
		case err == nil && keyed(req) && stillRunning(res):
			wait, tally.unknown = backoff, true
			if ra, ok := retryAfterHeader(res); ok {
				wait, asked = ra, true
			}
		case err == nil && res.StatusCode == http.StatusTooManyRequests:
			wait, asked = retryAfter(res), true
		default:
			return res, err
		}
		if req.Body != nil && req.GetBody == nil {
			return res, err
		}
		if timed {
			// Retried until the budget is spent: the last wait is cut to
			// what is left, so a last attempt goes out at the deadline. A
			// wait the server asked for that does not fit is not waited.
			left := time.Until(deadline)
			switch {
			case left <= 0, asked && (wait > left || wait > d.maxWait):
				return res, err
			case asked:
				wait += jitteredBackoff(0, rand.Int64N) // many clients told the same second spread out
			}
			wait = min(wait, left)
		} else if attempt >= d.max || wait > d.maxWait {
			return res, err
		}
		if res != nil {
			_ = res.Body.Close() // an answer being retried: its body is unread and unwanted
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, &url.Error{Op: urlOp(req.Method), URL: redactedURL(req.URL), Err: ctx.Err()}
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

// attemptTally is what the retries of one call saw, for the error of a call
// that gives up (see unresolved): how many attempts were made, whether any
// may have reached the server (its headers were written), and whether any
// may have been carried out without its answer reaching us.
type attemptTally struct {
	attempts         int
	reached, unknown bool
}

type tallyKey struct{}

// withTally returns ctx carrying a new tally for the request made with it.
func withTally(ctx context.Context) (context.Context, *attemptTally) {
	t := &attemptTally{}
	return context.WithValue(ctx, tallyKey{}, t), t
}

// stillRunning reports whether res, a 409, says that the request with this
// Idempotency-Key is still running elsewhere (or died holding its claim, which
// lapses): 40904 with replayable: true, or (another server's or proxy's
// conflict) a Retry-After, unless the body says replayable: false, a
// request that completed and will never be replayed. The body is peeked
// and put back for the caller.
func stillRunning(res *http.Response) bool {
	if res.StatusCode != http.StatusConflict {
		return false
	}
	var env struct {
		Error struct {
			Code    ErrorCode `json:"code"`
			Details struct {
				Replayable *bool `json:"replayable"`
			} `json:"details"`
		} `json:"error"`
	}
	if res.Body != nil {
		peeked, rerr := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		rest := io.Reader(res.Body)
		if rerr != nil {
			rest = errorReader{rerr}
		}
		res.Body = struct {
			io.Reader
			io.Closer
		}{io.MultiReader(bytes.NewReader(peeked), rest), res.Body}
		_ = json.Unmarshal(peeked, &env) // not the envelope: only Retry-After speaks
	}
	if r := env.Error.Details.Replayable; env.Error.Code == CodeIdempotencyConflict && r != nil {
		return *r
	}
	_, ok := retryAfterHeader(res)
	return ok
}

type errorReader struct{ err error }

func (e errorReader) Read([]byte) (int, error) { return 0, e.err }

// retryAfter is what res's Retry-After asks for (1 s when absent or unreadable).
func retryAfter(res *http.Response) time.Duration {
	if d, ok := retryAfterHeader(res); ok {
		return d
	}
	return time.Second
}

// retryAfterHeader is res's Retry-After in seconds, if it has a readable one.
func retryAfterHeader(res *http.Response) (time.Duration, bool) {
	s, err := strconv.Atoi(res.Header.Get("Retry-After"))
	if err != nil || s < 0 {
		return 0, false
	}
	return time.Duration(s) * time.Second, true
}

// urlOp is the Op net/http gives a *url.Error: "Get", "Post", …
func urlOp(method string) string {
	if method == "" {
		return "Get"
	}
	return method[:1] + strings.ToLower(method[1:])
}
