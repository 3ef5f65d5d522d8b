// Package client is the Go client for the HSRCPAY API-key service: a thin,
// typed layer over the client generated from openapi.yaml (client/oapi).
//
//	c, err := client.New("https://api.hsrcpay.com/v1", os.Getenv("HSRCPAY_API_KEY"))
//	key, err := c.CreateAPIKey(ctx, "acct_123", client.CreateAPIKeyRequest{
//		Name:        "Checkout backend",
//		Permissions: client.Permissions{"payment": {"create", "read"}},
//	})
//	if errors.Is(err, client.ErrConflict) { … }
//
//	for key, err := range c.ListAPIKeys(ctx, "acct_123", client.ListAPIKeysOptions{Status: client.StatusActive}) {
//		if err != nil { … }
//		fmt.Println(key.Id, key.Name)
//	}
//	_, err = c.UpdateAPIKey(ctx, keyID, client.Disable())
//	_, err = c.DeleteAPIKey(ctx, keyID)
//
// Errors are *client.Error, carrying the envelope's code, message, details
// and the request id; match them with errors.Is against the Err* kinds.
//
// Retries (WithRetries) depend on the method: a 429 and a refused connection
// are retried for every request; GET (read, list) and DELETE (idempotent by
// contract: a second delete answers 200 with the deleted key) are also
// retried after a timeout or a broken connection; POST (create, regenerate)
// and PATCH (update) never are, since their outcome is then unknown.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client/oapi"
)

// Types from the spec, under Go-style names.
type (
	APIKey              = oapi.ApiKey
	CreateAPIKeyRequest = oapi.CreateApiKeyRequest
	Permissions         = oapi.Permissions
	Metadata            = oapi.Metadata
	ErrorCode           = oapi.ErrorCode
	FieldError          = oapi.FieldError
	CreatedBy           = oapi.CreatedBy

	// APIKeyView is a key as read, listed, updated or deleted: everything but
	// the secret (KeyHint recognises it).
	APIKeyView = oapi.ApiKeyView
	// KeyStatus is a key's status: StatusActive, StatusInactive or StatusExpired.
	KeyStatus = oapi.ApiKeyViewStatus
	// KeyType is SECRET or PUBLISHABLE.
	KeyType = oapi.ApiKeyViewType
	// UpdateAPIKeyRequest holds the fields to change; nil fields keep their
	// value. Disable, Enable, Rename build common ones; Ptr helps with the rest.
	UpdateAPIKeyRequest = oapi.UpdateApiKeyRequest
	// UpdateStatus is the status an update sets: ACTIVE or INACTIVE.
	UpdateStatus = oapi.UpdateApiKeyRequestStatus

	// AuditEvent is one change to a key, hash-chained per account and mode.
	AuditEvent = oapi.AuditEvent
	// AuditAction is what an audit event records (AuditCreate, …).
	AuditAction = oapi.AuditAction

	// APIKeyPage and AuditEventPage are one page of a list.
	APIKeyPage     = oapi.ApiKeyList
	AuditEventPage = oapi.AuditEventList
)

// Values of the spec's enums.
const (
	StatusActive   KeyStatus = oapi.KeyViewActive
	StatusInactive KeyStatus = oapi.KeyViewInactive
	StatusExpired  KeyStatus = oapi.KeyViewExpired

	TypeSecret      KeyType = oapi.KeyViewSecret
	TypePublishable KeyType = oapi.KeyViewPublishable

	AuditCreate     AuditAction = oapi.AuditCreate
	AuditRegenerate AuditAction = oapi.AuditRegenerate
	AuditUpdate     AuditAction = oapi.AuditUpdate
	AuditDisable    AuditAction = oapi.AuditDisable
	AuditEnable     AuditAction = oapi.AuditEnable
	AuditDelete     AuditAction = oapi.AuditDelete
	AuditBootstrap  AuditAction = oapi.AuditBootstrap
)

// Client calls the API with one bearer token.
type Client struct {
	raw   *oapi.ClientWithResponses
	token string
}

type settings struct {
	httpClient   *http.Client
	userAgent    string
	maxRetries   int
	maxRetryWait time.Duration
}

// Option configures New.
type Option func(*settings)

// WithHTTPClient sets the HTTP client (timeouts, transport, proxies).
func WithHTTPClient(h *http.Client) Option { return func(s *settings) { s.httpClient = h } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(s *settings) { s.userAgent = ua } }

// WithRetries sets how many times a request is retried when that is safe:
// any request after a 429 (waiting Retry-After, at most maxWait) or when the
// connection was refused before anything was sent; GET and DELETE requests
// (idempotent) also after a timeout or a connection that broke, with a short
// backoff. POST and PATCH are never retried once they may have reached the
// server. 0 disables retries. Default: 2, 30s.
func WithRetries(n int, maxWait time.Duration) Option {
	return func(s *settings) { s.maxRetries, s.maxRetryWait = n, maxWait }
}

// New returns a client for baseURL (e.g. "http://localhost:8080/v1") that
// authenticates with token (a secret key or a JWT).
func New(baseURL, token string, opts ...Option) (*Client, error) {
	s := settings{httpClient: &http.Client{Timeout: 30 * time.Second}, userAgent: "hsrcpay-go", maxRetries: 2, maxRetryWait: 30 * time.Second}
	for _, o := range opts {
		o(&s)
	}
	if token == "" {
		return nil, errors.New("client: empty token")
	}
	if !strings.HasPrefix(baseURL, "http://") && !strings.HasPrefix(baseURL, "https://") {
		return nil, fmt.Errorf("client: base URL %q must start with http:// or https://", baseURL)
	}
	doer := &retryDoer{c: s.httpClient, max: s.maxRetries, maxWait: s.maxRetryWait}
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
	return &Client{raw: raw, token: token}, nil
}

// Raw is the generated client, for what this wrapper does not cover.
func (c *Client) Raw() *oapi.ClientWithResponses { return c.raw }

// CreateAPIKey issues a custom secret key on accountID. The returned Key
// field holds the plaintext secret; it is never shown again.
func (c *Client) CreateAPIKey(ctx context.Context, accountID string, req CreateAPIKeyRequest) (*APIKey, error) {
	res, err := c.raw.CreateApiKeyWithResponse(ctx, &oapi.CreateApiKeyParams{AccountId: accountID}, req)
	if err != nil {
		return nil, err
	}
	switch {
	case res.JSON201 != nil:
		return &res.JSON201.Data, nil
	case res.JSON200 != nil:
		return &res.JSON200.Data, nil
	}
	return nil, ParseError(res.HTTPResponse, res.Body)
}

// RegenerateOption adjusts a regenerate call.
type RegenerateOption func(*oapi.RegenerateApiKeyRequest)

// WithGracePeriod keeps the current secret working for d (whole minutes, at
// most 7 days) beside the new one: zero-downtime rotation.
func WithGracePeriod(d time.Duration) RegenerateOption {
	return func(r *oapi.RegenerateApiKeyRequest) {
		m := int(d / time.Minute)
		r.GracePeriodMinutes = &m
	}
}

// RegenerateAPIKey rotates a managed key's secret. Without options the old
// secret stops working at once.
func (c *Client) RegenerateAPIKey(ctx context.Context, id string, opts ...RegenerateOption) (*APIKey, error) {
	var (
		res *oapi.RegenerateApiKeyResponse
		err error
	)
	if len(opts) == 0 {
		res, err = c.raw.RegenerateApiKeyWithBodyWithResponse(ctx, id, "application/json", nil)
	} else {
		var body oapi.RegenerateApiKeyRequest
		for _, o := range opts {
			o(&body)
		}
		res, err = c.raw.RegenerateApiKeyWithResponse(ctx, id, body)
	}
	if err != nil {
		return nil, err
	}
	if res.JSON200 != nil {
		return &res.JSON200.Data, nil
	}
	return nil, ParseError(res.HTTPResponse, res.Body)
}

// errEmptyID is returned, without a request, for an empty key id (which
// would otherwise address another route).
var errEmptyID = errors.New("client: empty key id")

// GetAPIKey returns one key of the credential's account and mode, deleted or
// not, without its secret. An id the credential cannot see (another account's
// or mode's) is ErrNotFound. A GET is retried on timeouts and broken
// connections (see WithRetries).
func (c *Client) GetAPIKey(ctx context.Context, id string) (*APIKeyView, error) {
	if id == "" {
		return nil, errEmptyID
	}
	res, err := c.raw.GetApiKeyWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if res.JSON200 != nil {
		return &res.JSON200.Data, nil
	}
	return nil, ParseError(res.HTTPResponse, res.Body)
}

// UpdateAPIKey changes the fields set in req (at least one) and returns the
// key as changed: name, metadata (replaces the whole map), status (Disable,
// Enable) or expires_at (only earlier). Documented refusals: ErrNotFound,
// ErrForbidden (code 40302 when the key holds a permission the caller lacks),
// ErrConflict (40900 name taken), ErrUnprocessable (42205 a managed key's
// name or expiry, 42206 a later expiry). A PATCH is not retried after a
// timeout: its outcome is then unknown (GetAPIKey tells).
func (c *Client) UpdateAPIKey(ctx context.Context, id string, req UpdateAPIKeyRequest) (*APIKeyView, error) {
	if id == "" {
		return nil, errEmptyID
	}
	res, err := c.raw.UpdateApiKeyWithResponse(ctx, id, req)
	if err != nil {
		return nil, err
	}
	if res.JSON200 != nil {
		return &res.JSON200.Data, nil
	}
	return nil, ParseError(res.HTTPResponse, res.Body)
}

// Disable is the update that switches a key off (status INACTIVE) at once.
func Disable() UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Status: Ptr(oapi.UpdateInactive)} }

// Enable is the update that switches a disabled key back on (status ACTIVE).
func Enable() UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Status: Ptr(oapi.UpdateActive)} }

// Rename is the update that sets a key's name.
func Rename(name string) UpdateAPIKeyRequest { return UpdateAPIKeyRequest{Name: &name} }

// Ptr returns a pointer to v, for the optional fields of requests:
// UpdateAPIKeyRequest{ExpiresAt: client.Ptr(t)}.
func Ptr[T any](v T) *T { return &v }

// DeleteAPIKey revokes a custom key and returns it, now deleted; its secret
// stops working at once. Deleting a key that is already deleted returns it
// as well (200), so DELETE is idempotent and is retried on timeouts and
// broken connections (see WithRetries). Documented refusals: ErrNotFound,
// ErrForbidden (40302 the key holds more than the caller), ErrUnprocessable
// (42204 managed keys are rotated with RegenerateAPIKey, never deleted).
func (c *Client) DeleteAPIKey(ctx context.Context, id string) (*APIKeyView, error) {
	if id == "" {
		return nil, errEmptyID
	}
	res, err := c.raw.DeleteApiKeyWithResponse(ctx, id)
	if err != nil {
		return nil, err
	}
	if res.JSON200 != nil {
		return &res.JSON200.Data, nil
	}
	return nil, ParseError(res.HTTPResponse, res.Body)
}
