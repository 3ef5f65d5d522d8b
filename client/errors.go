package client

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
)

// Kind is a family of errors, for errors.Is: errors.Is(err, client.ErrNotFound).
// Every error a method returns matches at most one Kind; the Kind values are
// errors themselves and print as "hsrcpay: " and their text.
type Kind string

// Error is "hsrcpay: " and k's text, e.g. "hsrcpay: not found".
func (k Kind) Error() string { return "hsrcpay: " + string(k) }

// Kinds of API answer: an [*Error] matches the one of its HTTP status, so
// callers never switch on status codes. Compare [Error.Code] with the Code…
// constants for the precise reason.
const (
	// ErrInvalidRequest is a request the API refused as malformed: 400
	// (CodeValidationFailed, CodeMalformedBody), 405, 413 and 415.
	ErrInvalidRequest Kind = "invalid request"
	// ErrUnauthorized is 401: no token, or one that is malformed, unknown,
	// revoked, deleted or expired.
	ErrUnauthorized Kind = "unauthorized"
	// ErrForbidden is 403: the credential authenticated but may not do this
	// (CodePermissionDenied, CodePrivilegeEscalation, CodeReplacedSecret, …).
	ErrForbidden Kind = "forbidden"
	// ErrNotFound is 404: no such key (or not visible to the credential), no
	// such account, or no such route.
	ErrNotFound Kind = "not found"
	// ErrConflict is 409: a name taken, a key not active or deleted, the
	// account's cap on active keys.
	ErrConflict Kind = "conflict"
	// ErrUnprocessable is 422: a well-formed request the API will not carry
	// out (an unknown permission, a bad expiry, deleting a managed key, …).
	ErrUnprocessable Kind = "unprocessable"
	// ErrRateLimited is 429: over a budget; [Error.RetryAfter] says when to
	// retry ([WithRetries] waits it out by itself).
	ErrRateLimited Kind = "rate limited"
	// ErrServer is any 5xx: the service, or a proxy before it, failed; retry
	// later, quoting the request id.
	ErrServer Kind = "server error"
)

// Kinds of failure to get an answer: a [*TransportError] matches one of them.
const (
	// ErrUnavailable is a service that could not be reached: connection
	// refused, reset or closed early, unknown host, unreachable network.
	ErrUnavailable Kind = "unavailable"
	// ErrTimeout is a request cut short by the context's deadline or the HTTP
	// client's Timeout; errors.Is(err, context.DeadlineExceeded) holds too.
	ErrTimeout Kind = "timeout"
	// ErrCanceled is a request stopped by the cancellation of its context;
	// errors.Is(err, context.Canceled) holds too.
	ErrCanceled Kind = "canceled"
	// ErrTransport is any other failure to get an answer, one that waiting
	// does not cure: a TLS certificate that does not verify, a server that
	// does not speak TLS, a proxy that refuses.
	ErrTransport Kind = "transport failure"
)

// ErrInvalidArgument is an argument or option the API cannot express or
// would refuse: an [*ArgumentError], found before any request was sent.
const ErrInvalidArgument Kind = "invalid argument"

// ErrBadPage is yielded by ListAPIKeys and ListAuditEvents when the server's
// pages do not follow on (has_more without a next_cursor, or the same cursor
// twice): following them could loop for ever.
const ErrBadPage Kind = "inconsistent pagination from the server"

// Error is an API error: the envelope's code, message and details, the HTTP
// status and the request id to quote to support. It matches the [Kind] of its
// status with errors.Is.
type Error struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Code is the envelope's stable code (compare it with CodeDuplicateName
	// and the other Code… constants); 0 when the body was not the API's
	// envelope (e.g. a proxy's page).
	Code ErrorCode
	// Message is for people; it may change, so match on Code.
	Message string
	// Details is the envelope's machine-readable context; which keys it has
	// depends on the code (e.g. "missing" with CodePrivilegeEscalation).
	Details map[string]any
	// RequestID identifies the request (X-Request-Id); quote it to support.
	RequestID string
	// Fields lists the failing fields of a validation error
	// (CodeValidationFailed).
	Fields []FieldError
	// RetryAfter is the wait the server asks for on 429 and 503.
	RetryAfter time.Duration
	// Hint says what the caller probably got wrong, when the client can
	// tell: a base URL without /v1 for CodeRouteNotFound. "" otherwise.
	Hint string
}

// Error describes e: status, message and code, then each failing field,
// the other details, the request id and the hint, e.g.
//
//	hsrcpay: 400 Request validation failed (code 40000): body /permissions/payment/0: …; request_id=req_…
//	hsrcpay: 422 Unknown permission (code 42200): unknown=["payment:explode"]; request_id=req_…
func (e *Error) Error() string {
	s := fmt.Sprintf("hsrcpay: %d %s (code %d)", e.StatusCode, printable(e.Message), e.Code)
	var parts []string
	for _, f := range e.Fields {
		parts = append(parts, printable(fmt.Sprintf("%s %s: %s", f.Location, f.Field, f.Reason)))
	}
	keys := make([]string, 0, len(e.Details))
	for k := range e.Details {
		if k != "request_id" && k != "errors" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		v, ok := e.Details[k].(string)
		if !ok {
			b, _ := json.Marshal(e.Details[k])
			v = string(b)
		}
		parts = append(parts, printable(k+"="+v))
	}
	if e.RequestID != "" {
		parts = append(parts, "request_id="+printable(e.RequestID))
	}
	if e.Hint != "" {
		parts = append(parts, "hint: "+e.Hint)
	}
	if len(parts) > 0 {
		s += ": " + strings.Join(parts, "; ")
	}
	return s
}

// printable escapes control characters, so that what a server sent cannot
// forge lines in a log.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// Is lets errors.Is(err, client.ErrNotFound) work: e matches the [Kind] of
// its status.
func (e *Error) Is(target error) bool {
	k, ok := target.(Kind)
	return ok && k != "" && k == statusKind(e.StatusCode)
}

// statusKind is the Kind of an API answer with this status ("" for none).
func statusKind(status int) Kind {
	switch {
	case status == 400, status == 405, status == 413, status == 415:
		return ErrInvalidRequest
	case status == 401:
		return ErrUnauthorized
	case status == 403:
		return ErrForbidden
	case status == 404:
		return ErrNotFound
	case status == 409:
		return ErrConflict
	case status == 422:
		return ErrUnprocessable
	case status == 429:
		return ErrRateLimited
	case status >= 500:
		return ErrServer
	}
	return ""
}

// ParseError reads an error response, for users of [Client.Raw]: the
// envelope when the body is one, the status alone otherwise.
func ParseError(res *http.Response, body []byte) error {
	e := &Error{StatusCode: res.StatusCode, Message: http.StatusText(res.StatusCode), RequestID: res.Header.Get("X-Request-Id")}
	var env struct {
		Message string `json:"message"`
		Error   struct {
			Code    ErrorCode      `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error.Code != 0 {
		e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
		if rid, ok := e.Details["request_id"].(string); ok && rid != "" {
			e.RequestID = rid
		}
		var fields struct {
			Error struct {
				Details struct {
					Errors []FieldError `json:"errors"`
				} `json:"details"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &fields) == nil {
			e.Fields = fields.Error.Details.Errors
		}
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}

// ArgumentError is an argument or option that the API cannot express or
// would refuse, found before any request was sent: a grace period that is not
// a whole number of minutes, negative or longer than 7 days, a page size out
// of 1 to 100, an empty key or account id, a base URL that is not http(s).
// It matches [ErrInvalidArgument].
type ArgumentError struct {
	// Name is the argument or option: "WithGracePeriod",
	// "ListAPIKeysOptions.Limit", "id", "accountID", "baseURL", …
	Name string
	// Value is what was given.
	Value any
	// Reason says what the API accepts.
	Reason string
}

// Error names the argument, its value and what the API accepts.
func (e *ArgumentError) Error() string {
	v := fmt.Sprint(e.Value)
	if s, ok := e.Value.(string); ok {
		v = strconv.Quote(s)
	}
	return fmt.Sprintf("hsrcpay: invalid argument: %s %s: %s", e.Name, v, e.Reason)
}

// Is lets errors.Is(err, client.ErrInvalidArgument) work.
func (e *ArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// TransportError is a request that got no answer from the API: the
// connection failed, the request timed out or its context was cancelled. It
// matches its Kind with errors.Is, as well as context.Canceled or
// context.DeadlineExceeded when the context ended it; Unwrap returns the
// *url.Error net/http returned (or one made alike, for a failure while
// reading the answer's body), whose cause stays reachable with errors.Is and
// errors.As.
type TransportError struct {
	// Kind is ErrUnavailable, ErrTimeout, ErrCanceled or ErrTransport.
	Kind Kind
	// Method and URL are the request's.
	Method, URL string
	// Err is the underlying *url.Error.
	Err error

	ctxErr error // context.Canceled or context.DeadlineExceeded when the context ended the request
}

// Error names the kind of failure, the request and the underlying error.
func (e *TransportError) Error() string {
	inner := e.Err
	var ue *url.Error
	if errors.As(inner, &ue) && ue.Err != nil {
		inner = ue.Err // its Op and URL are already in the message
	}
	return fmt.Sprintf("hsrcpay: %s: %s %s: %v", string(e.Kind), e.Method, e.URL, inner)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Is matches e's Kind, and the context's error when the context ended the
// request.
func (e *TransportError) Is(target error) bool {
	if k, ok := target.(Kind); ok {
		return k == e.Kind
	}
	return e.ctxErr != nil && target == e.ctxErr
}

// transportError wraps err, the failure of req, in a *TransportError (once).
func transportError(req *http.Request, err error) error {
	var te *TransportError
	if err == nil || errors.As(err, &te) {
		return err
	}
	kind, ctxErr := classify(req.Context(), err)
	u := redactedURL(req.URL)
	var ue *url.Error
	if !errors.As(err, &ue) {
		err = &url.Error{Op: urlOp(req.Method), URL: u, Err: err}
	}
	return &TransportError{Kind: kind, Method: req.Method, URL: u, Err: err, ctxErr: ctxErr}
}

func redactedURL(u *url.URL) string {
	if u == nil {
		return ""
	}
	return u.Redacted()
}

// classify says which Kind of transport failure err is: the context's end
// first (whatever the transport made of it), then timeouts, certificate and
// protocol failures, then failed connections.
func classify(ctx context.Context, err error) (Kind, error) {
	switch ctx.Err() {
	case context.Canceled:
		return ErrCanceled, context.Canceled
	case context.DeadlineExceeded:
		return ErrTimeout, context.DeadlineExceeded
	}
	if errors.Is(err, context.Canceled) {
		return ErrCanceled, nil
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		return ErrTimeout, nil
	}
	var (
		cve   *tls.CertificateVerificationError
		rhe   tls.RecordHeaderError
		alert tls.AlertError
		uae   x509.UnknownAuthorityError
		hne   x509.HostnameError
		cie   x509.CertificateInvalidError
	)
	if errors.As(err, &cve) || errors.As(err, &rhe) || errors.As(err, &alert) ||
		errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie) {
		return ErrTransport, nil
	}
	var (
		dns *net.DNSError
		op  *net.OpError
	)
	if errors.As(err, &dns) || errors.As(err, &op) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNABORTED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH) {
		return ErrUnavailable, nil
	}
	return ErrTransport, nil
}

// bodyReader types the errors of reading an answer's body (a connection
// reset mid-body, a timeout while reading) as the request's do.
type bodyReader struct {
	io.ReadCloser
	req *http.Request
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = transportError(b.req, err)
	}
	return n, err
}

// UnresolvedError is a create or regenerate whose outcome is unknown. It was
// sent with an Idempotency-Key and retried ([WithRetryBudget]), at least one
// attempt may have reached the server, and none got a definite answer
// before the retries or the context ran out: the last one timed out, lost or
// could not open its connection, got a 5xx, or got a 409 saying that an
// earlier attempt was still running. (A call none of whose attempts was
// sent, every connection refused, returns its [*TransportError] alone.) An attempt
// may have been carried out, the key created (or its secret rotated) and the
// secret lost with the answer; or nothing may have happened.
//
// Do not send the request again without the key: that could create a second
// key. Resume instead, now or later (from another process, after a restart)
// within 24 hours: send the same request (same account or key id, body and
// credential) with WithIdempotencyKey(e.IdempotencyKey). The server answers
// with the first attempt's key and secret if it was carried out, and carries
// the request out once if not. The Idempotency-Key is not a secret (a replay
// goes only to the credential that made the request): log it or store it
// with the intent.
//
// errors.Is and errors.As see through it to Err: an unresolved call still
// matches [ErrUnavailable], [ErrTimeout], [ErrServer], … and
// context.DeadlineExceeded.
type UnresolvedError struct {
	// IdempotencyKey is the Idempotency-Key every attempt carried: the one
	// given with WithIdempotencyKey, or the random one the client chose.
	IdempotencyKey string
	// Attempts is how many requests were sent.
	Attempts int
	// Err is the last attempt's failure: a *TransportError, or an *Error.
	Err error
}

// Error is Err's message followed by the attempts and the key to resume with.
func (e *UnresolvedError) Error() string {
	return fmt.Sprintf("%v (outcome unknown after %d attempt(s); to resume, send the same request with Idempotency-Key %q)",
		e.Err, e.Attempts, e.IdempotencyKey)
}

// Unwrap returns Err.
func (e *UnresolvedError) Unwrap() error { return e.Err }

// unresolved turns err, the failure of a call sent with Idempotency-Key key
// (nil: none), into an *UnresolvedError unless its outcome is known: no
// attempt was sent (every connection failed to open, or the context ended
// first), or the answer is definite. A 4xx says what became of every attempt, since the
// server replays a completed attempt's answer to any retry; except a 409
// saying an attempt is still running, and a 429 (refused before the server
// looked at the key) after an attempt whose outcome was unknown. No answer,
// or a 5xx (the server, or a proxy before it, failed; an earlier attempt may
// have been carried out), is unknown.
func unresolved(key *string, tally *attemptTally, err error) error {
	if key == nil || err == nil || !tally.reached {
		return err
	}
	var ae *Error
	if errors.As(err, &ae) && ae.StatusCode < 500 {
		running := ae.StatusCode == 409 && ae.Code == CodeIdempotencyConflict && ae.Details["replayable"] == true
		if !running && (ae.StatusCode != 429 || !tally.unknown) {
			return err
		}
	}
	return &UnresolvedError{IdempotencyKey: *key, Attempts: tally.attempts, Err: err}
}
