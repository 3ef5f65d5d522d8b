package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client/oapi"
)

// Client calls the API with one bearer token. It is safe for concurrent use.
// Make one with [New]: the zero Client is not configured, and its methods
// return [ErrNotConfigured].
type Client struct {
	raw     *oapi.ClientWithResponses
	token   string
	baseURL string
}

type settings struct {
	httpClient   *http.Client
	userAgent    string
	maxRetries   int
	maxRetryWait time.Duration
	retryBudget  time.Duration
	// retriesSet and budgetSet say which of WithRetries and WithRetryBudget
	// were given: WithRetries alone counts keyed retries too.
	retriesSet, budgetSet bool
	err                   error // the first invalid option
}

func (s *settings) fail(name string, value any, reason string) {
	if s.err == nil {
		s.err = &ArgumentError{Name: name, Value: value, Reason: reason}
	}
}

// Option configures [New]. An invalid option makes New return an
// [*ArgumentError].
type Option func(*settings)

// WithHTTPClient sets the HTTP client (timeouts, transport, proxies). The
// default has a 30-second Timeout.
func WithHTTPClient(h *http.Client) Option {
	return func(s *settings) {
		if h == nil {
			s.fail("WithHTTPClient", h, "want an *http.Client, not nil")
			return
		}
		s.httpClient = h
	}
}

// WithUserAgent sets the User-Agent header. Default: "hsrcpay-go".
func WithUserAgent(ua string) Option { return func(s *settings) { s.userAgent = ua } }

// WithRetries sets how many times a request is retried when that is safe:
// any request after a 429 (waiting Retry-After, at most maxWait) or when the
// connection was refused before anything was sent; GET and DELETE requests
// (idempotent) and verify also after a timeout or a connection that broke,
// with a short backoff. Other POSTs, and PATCH, are never retried once they
// may have reached the server, except create and regenerate with their
// Idempotency-Key (the default): those are also retried after a timeout, a
// broken connection, 502, 503, 504, and a 409 saying that an earlier
// attempt is still running, and for a time rather than a number of times
// (see [WithRetryBudget]), unless WithRetries is given without
// WithRetryBudget: then they too are retried at most n times. 0 disables
// every retry; n and maxWait must not be negative. Default: 2, 30s.
func WithRetries(n int, maxWait time.Duration) Option {
	return func(s *settings) {
		switch {
		case n < 0:
			s.fail("WithRetries", n, "want 0 retries or more")
		case maxWait < 0:
			s.fail("WithRetries", maxWait, "want a maximum wait of 0 or more")
		default:
			s.maxRetries, s.maxRetryWait, s.retriesSet = n, maxWait, true
		}
	}
}

// DefaultRetryBudget is how long a create or regenerate whose outcome is
// unknown is retried unless [WithRetryBudget] says otherwise: 30 seconds.
// That rides out a server restart (seconds) and the wait before the server
// lets a retry take over the claim of an attempt that died mid-way (seconds
// too: its lease must run out), with room to spare.
const DefaultRetryBudget = 30 * time.Second

// WithRetryBudget sets for how long a create or regenerate sent with an
// Idempotency-Key (the default) is retried while its outcome is unknown: the
// attempt timed out, its connection broke or was refused, the answer was
// 502, 503 or 504, or a 409 said that an earlier attempt with the key is
// still running (code CodeIdempotencyConflict with details
// "replayable": true, or Retry-After). Each retry waits a random time from 0
// to 100 ms, 200 ms, 400 ms, … up to 2 s (exponential backoff with full
// jitter), or what Retry-After asks for (at most WithRetries' maxWait), and
// as many attempts are sent as fit in d from the first; the context's
// deadline or cancellation ends the call sooner. The server carries such a
// request out at most once whatever the number of attempts. A definite
// answer (2xx, or a 4xx other than those) is never retried.
//
// A call that runs out of time or context returns an [*UnresolvedError]
// holding the Idempotency-Key, with which it can be resumed. Default:
// [DefaultRetryBudget] (30 s). 0 counts the retries instead, at most n of
// [WithRetries] (2 by default); WithRetries(0, …) disables them whatever
// the budget. d must not be negative.
func WithRetryBudget(d time.Duration) Option {
	return func(s *settings) {
		if d < 0 {
			s.fail("WithRetryBudget", d, "want a duration of 0 or more")
			return
		}
		s.retryBudget, s.budgetSet = d, true
	}
}

// New returns a client for baseURL (e.g. "https://api.hsrcpay.com/v1" or
// "http://localhost:8080/v1") that authenticates with token (a secret key or
// a JWT). An empty token, a base URL that is not http(s) with a host, or an
// invalid option is an [*ArgumentError].
func New(baseURL, token string, opts ...Option) (*Client, error) {
	s := settings{httpClient: &http.Client{Timeout: 30 * time.Second}, userAgent: "hsrcpay-go", maxRetries: 2, maxRetryWait: 30 * time.Second,
		retryBudget: DefaultRetryBudget}
	for _, o := range opts {
		o(&s)
	}
	if s.retriesSet && !s.budgetSet {
		s.retryBudget = 0 // WithRetries alone: n counts keyed retries too
	}
	if s.err != nil {
		return nil, s.err
	}
	if token == "" {
		return nil, &ArgumentError{Name: "token", Value: token, Reason: "want a secret key or a JWT, not an empty string"}
	}
	if u, err := url.Parse(baseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &ArgumentError{Name: "baseURL", Value: baseURL, Reason: "want an http:// or https:// URL with a host, such as https://api.hsrcpay.com/v1"}
	}
	doer := &retryDoer{c: s.httpClient, max: s.maxRetries, maxWait: s.maxRetryWait, budget: s.retryBudget}
	raw, err := oapi.NewClientWithResponses(strings.TrimRight(baseURL, "/"),
		oapi.WithHTTPClient(doer),
		oapi.WithRequestEditorFn(func(_ context.Context, r *http.Request) error {
			r.Header.Set("Authorization", "Bearer "+token)
			r.Header.Set("User-Agent", s.userAgent)
			return nil
		}))
	if err != nil {
		return nil, err
	}
	return &Client{raw: raw, token: token, baseURL: baseURL}, nil
}

// Raw is the generated client (package client/oapi), for what this package
// does not cover; nil for a Client not made by [New]. Its requests go through
// the same retries and error typing; [ParseError] reads its error answers.
func (c *Client) Raw() *oapi.ClientWithResponses {
	if c == nil {
		return nil
	}
	return c.raw
}

// ErrNotConfigured is returned by every method of a Client that [New] did not
// make (a zero Client, or a nil *Client), before any request.
const ErrNotConfigured Kind = "client not configured: create it with client.New"

// ready refuses a Client that New did not make, which has no base URL,
// token or HTTP client to send anything with.
func (c *Client) ready() error {
	if c == nil || c.raw == nil {
		return ErrNotConfigured
	}
	return nil
}

// jsonBody encodes a request body; the bytes.Reader lets net/http (and the
// retries) send it again.
func jsonBody(v any) (io.Reader, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("hsrcpay: encode request: %w", err)
	}
	return bytes.NewReader(b), nil
}

// result reads an answer: the data of a success envelope decoded into T (this
// package's types, whose JSON names TestTypesMatchTheSpec holds equal to the
// spec's), or the error answer as an *Error.
func result[T any](c *Client, res *http.Response, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return nil, c.parseError(res, body)
	}
	var env struct {
		Data *T `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data == nil {
		if err == nil {
			err = fmt.Errorf("no data")
		}
		return nil, fmt.Errorf("hsrcpay: %d answer to %s %s is not the API's envelope: %w",
			res.StatusCode, res.Request.Method, redactedURL(res.Request.URL), err)
	}
	return env.Data, nil
}

// parseError is ParseError with a hint when the base URL is the likely cause.
func (c *Client) parseError(res *http.Response, body []byte) error {
	err := ParseError(res, body)
	var e *Error
	if errors.As(err, &e) {
		e.Hint = baseURLHint(c.baseURL, e)
	}
	return err
}

// baseURLHint is the hint for an answer "no such route" (CodeRouteNotFound)
// to a client whose base URL does not end in /v1: every route of the API is
// under /v1, so the base URL lacks it (the rule the hsrcpay CLI applies to
// --api-url).
func baseURLHint(baseURL string, e *Error) string {
	if e.Code != CodeRouteNotFound {
		return ""
	}
	u, err := url.Parse(baseURL)
	if err != nil || strings.HasSuffix(strings.TrimRight(u.Path, "/"), "/v1") {
		return ""
	}
	return fmt.Sprintf("the base URL %s should end in /v1, e.g. %s/v1", u.Redacted(), strings.TrimRight(u.Redacted(), "/"))
}

// requireID refuses an empty id or account id before any request: it would
// address another route, or ask for no account.
func requireID(name, value string) error {
	if value == "" {
		return &ArgumentError{Name: name, Value: value, Reason: "must not be empty"}
	}
	return nil
}

// CreateAPIKey issues a custom secret key on accountID. The returned Key
// field holds the plaintext secret; it is never shown again. Documented
// refusals: ErrForbidden (CodePrivilegeEscalation when req asks for a
// permission the caller lacks), ErrConflict (CodeDuplicateName,
// CodeKeyLimitReached, CodeIdempotencyConflict), ErrUnprocessable
// (CodeUnknownPermission, CodeInvalidExpiry, CodeLifetimeExceedsCaller,
// CodeIdempotencyKeyReused).
//
// Each call sends an Idempotency-Key (a new random 128-bit value unless
// [WithIdempotencyKey] gives one), so it is retried while its outcome is
// unknown (timeout, broken or refused connection, 502, 503, 504, an earlier
// attempt still running), for up to 30 s ([WithRetryBudget]): the server
// answers a retry with the key the first attempt created, never a second
// key. If the retries end without an answer, the error is an
// [*UnresolvedError]: the key may or may not have been created, and sending
// the same request again with WithIdempotencyKey(its IdempotencyKey) tells,
// returning the key and its secret if it was. [WithoutIdempotencyKey] sends
// none, and the call is then never retried once it may have reached the
// server.
func (c *Client) CreateAPIKey(ctx context.Context, accountID string, req CreateAPIKeyRequest, opts ...RequestOption) (*APIKey, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("accountID", accountID); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	s, err := requestOptions(opts)
	if err != nil {
		return nil, err
	}
	if m := s.body.GracePeriodMinutes; m != nil {
		return nil, &ArgumentError{Name: "WithGracePeriod", Value: time.Duration(*m) * time.Minute, Reason: "applies to RegenerateAPIKey only"}
	}
	params := &oapi.CreateAPIKeyParams{AccountID: accountID}
	if params.IdempotencyKey, err = s.idempotencyKey(); err != nil {
		return nil, err
	}
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	ctx, tally := withTally(ctx)
	res, err := c.raw.CreateAPIKeyWithBody(ctx, params, "application/json", body) //nolint:bodyclose // result (or its caller) reads and closes the body
	key, err := result[APIKey](c, res, err)
	return key, unresolved(params.IdempotencyKey, tally, err)
}

// RequestOption adjusts a [Client.CreateAPIKey] or [Client.RegenerateAPIKey]
// call ([WithIdempotencyKey], [WithoutIdempotencyKey]; [WithGracePeriod] for
// regenerate only).
type RequestOption func(*requestSettings)

// RegenerateOption adjusts a [Client.RegenerateAPIKey] call.
type RegenerateOption = RequestOption

type requestSettings struct {
	body    oapi.RegenerateAPIKeyRequest
	idemKey string
	noIdem  bool
	err     error
}

func requestOptions(opts []RequestOption) (*requestSettings, error) {
	var s requestSettings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
		if s.err != nil {
			return nil, s.err
		}
	}
	return &s, nil
}

// idempotencyKey is the Idempotency-Key to send: the caller's, none, or a
// new random 128-bit value.
func (s *requestSettings) idempotencyKey() (*string, error) {
	switch {
	case s.noIdem:
		return nil, nil
	case s.idemKey != "":
		return &s.idemKey, nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	k := hex.EncodeToString(b[:])
	return &k, nil
}

// WithIdempotencyKey sends key as the call's Idempotency-Key (1 to 255
// printable ASCII characters) instead of a random one: to retry, with the
// same request, a call made earlier (by another process, after a crash)
// whose answer was lost, such as the IdempotencyKey of an
// [*UnresolvedError]. The server replays the first answer for 24 hours.
func WithIdempotencyKey(key string) RequestOption {
	return func(s *requestSettings) {
		if !ValidIdempotencyKey(key) {
			s.err = &ArgumentError{Name: "WithIdempotencyKey", Value: key, Reason: "want 1 to 255 printable ASCII characters"}
			return
		}
		s.idemKey, s.noIdem = key, false
	}
}

// ValidIdempotencyKey reports whether key is an Idempotency-Key the API
// accepts: 1 to 255 printable ASCII characters.
func ValidIdempotencyKey(key string) bool {
	return len(key) > 0 && len(key) <= 255 && strings.IndexFunc(key, func(r rune) bool { return r < 0x20 || r > 0x7e }) < 0
}

// WithoutIdempotencyKey sends no Idempotency-Key: the call runs once, and is
// not retried after a timeout or a broken connection (its outcome is then
// unknown: list the keys to find out).
func WithoutIdempotencyKey() RequestOption {
	return func(s *requestSettings) { s.idemKey, s.noIdem = "", true }
}

// MaxGracePeriod is the longest grace period the API accepts: 7 days.
const MaxGracePeriod = 7 * 24 * time.Hour

// WithGracePeriod keeps the current secret working for d beside the new one
// (zero-downtime rotation), never past the key's expiry. The API counts in
// whole minutes, from 0 (the old secret stops at once, as without the option)
// to 7 days ([MaxGracePeriod]): any other d, such as 30*time.Second, 90s or
// 8 days, makes RegenerateAPIKey return an [*ArgumentError] without sending
// anything.
func WithGracePeriod(d time.Duration) RegenerateOption {
	return func(r *requestSettings) {
		var reason string
		switch {
		case d < 0:
			reason = "a grace period cannot be negative"
		case d%time.Minute != 0:
			reason = "the API counts grace periods in whole minutes"
		case d > MaxGracePeriod:
			reason = "a grace period is at most 7 days (10080 minutes)"
		default:
			m := int(d / time.Minute)
			r.body.GracePeriodMinutes = &m
			return
		}
		r.err = &ArgumentError{Name: "WithGracePeriod", Value: d, Reason: reason + "; want whole minutes from 0 to 7 days"}
	}
}

// RegenerateAPIKey rotates a managed key's secret and returns the key with
// its new secret in Key, shown only now. Without options the old secret stops
// working at once; [WithGracePeriod] keeps it working a while
// (PreviousKeyExpiresAt says until when). Documented refusals:
// ErrUnprocessable (CodeKeyNotManaged: custom keys are not regenerated;
// CodeIdempotencyKeyReused), ErrForbidden (CodePrivilegeEscalation,
// CodeLifetimeEscalation, CodeReplacedSecret), ErrConflict (CodeKeyNotActive,
// CodeIdempotencyConflict). As CreateAPIKey, it sends an Idempotency-Key and
// is retried while its outcome is unknown: a retry returns the secret of the
// first rotation, never rotates twice. If the retries end without an answer,
// the error is an [*UnresolvedError]: the secret may have been rotated (the
// old one then stops working, or enters its grace period) and the new one is
// returned by resuming with WithIdempotencyKey(its IdempotencyKey).
func (c *Client) RegenerateAPIKey(ctx context.Context, id string, opts ...RegenerateOption) (*APIKey, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("id", id); err != nil {
		return nil, err
	}
	s, err := requestOptions(opts)
	if err != nil {
		return nil, err
	}
	params := &oapi.RegenerateAPIKeyParams{}
	if params.IdempotencyKey, err = s.idempotencyKey(); err != nil {
		return nil, err
	}
	ctx, tally := withTally(ctx)
	var res *http.Response
	if s.body.GracePeriodMinutes == nil { // no body: the server's default, no grace
		res, err = c.raw.RegenerateAPIKeyWithBody(ctx, id, params, "application/json", nil) //nolint:bodyclose // result (or its caller) reads and closes the body
	} else {
		res, err = c.raw.RegenerateAPIKey(ctx, id, params, s.body) //nolint:bodyclose // result (or its caller) reads and closes the body
	}
	key, err := result[APIKey](c, res, err)
	return key, unresolved(params.IdempotencyKey, tally, err)
}

// GetAPIKey returns one key of the credential's account and mode, deleted or
// not, without its secret. An id the credential cannot see (another account's
// or mode's) is ErrNotFound (CodeKeyNotFound). A GET is retried on timeouts
// and broken connections (see WithRetries).
func (c *Client) GetAPIKey(ctx context.Context, id string) (*APIKeyView, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("id", id); err != nil {
		return nil, err
	}
	res, err := c.raw.GetAPIKey(ctx, id) //nolint:bodyclose // result (or its caller) reads and closes the body
	return result[APIKeyView](c, res, err)
}

// UpdateAPIKey changes the fields set in req (at least one) and returns the
// key as changed: name, metadata (replaces the whole map), status (Disable,
// Enable) or expires_at (only earlier). Documented refusals: ErrNotFound,
// ErrForbidden (CodePrivilegeEscalation when the key holds a permission the
// caller lacks), ErrConflict (CodeDuplicateName, CodeKeyDeleted),
// ErrUnprocessable (CodeManagedKeyFixed for a managed key's name or expiry,
// or for switching the managed secret key off; CodeExpiryExtended for a
// later expiry). A PATCH is not retried after a
// timeout: its outcome is then unknown (GetAPIKey tells).
func (c *Client) UpdateAPIKey(ctx context.Context, id string, req UpdateAPIKeyRequest) (*APIKeyView, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("id", id); err != nil {
		return nil, err
	}
	if err := req.check(); err != nil {
		return nil, err
	}
	body, err := jsonBody(req)
	if err != nil {
		return nil, err
	}
	res, err := c.raw.UpdateAPIKeyWithBody(ctx, id, "application/json", body) //nolint:bodyclose // result (or its caller) reads and closes the body
	return result[APIKeyView](c, res, err)
}

// Disable is the update that switches a key off (status INACTIVE) at once.
func Disable() UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Status: Ptr(UpdateStatusInactive)} }

// Enable is the update that switches a disabled key back on (status ACTIVE).
func Enable() UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Status: Ptr(UpdateStatusActive)} }

// Rename is the update that sets a key's name.
func Rename(name string) UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Name: &name} }

// Ptr returns a pointer to v, for the optional fields of requests:
// UpdateAPIKeyRequest{ExpiresAt: client.Ptr(t)}.
func Ptr[T any](v T) *T { return &v }

// DeleteAPIKey revokes a custom key and returns it, now deleted; its secret
// stops working at once. Deleting a key that is already deleted returns it
// as well (200), so DELETE is idempotent and is retried on timeouts and
// broken connections (see WithRetries). Documented refusals: ErrNotFound,
// ErrForbidden (CodePrivilegeEscalation: the key holds more than the caller),
// ErrUnprocessable (CodeManagedKeyNotDeletable: managed keys are rotated with
// RegenerateAPIKey, never deleted).
func (c *Client) DeleteAPIKey(ctx context.Context, id string) (*APIKeyView, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("id", id); err != nil {
		return nil, err
	}
	res, err := c.raw.DeleteAPIKey(ctx, id) //nolint:bodyclose // result (or its caller) reads and closes the body
	return result[APIKeyView](c, res, err)
}
