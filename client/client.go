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
// Errors are *client.Error, carrying the envelope's code, message, details
// and the request id; match them with errors.Is against the Err* kinds.
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
// after a 429 (waiting Retry-After, at most maxWait) or when the connection
// was refused before anything was sent. 0 disables retries. Default: 2, 30s.
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
