package server

import (
	"context"
	"net/http"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// CreateApiKey is POST /api-keys/ (createApiKey).
func (h *handlers) CreateApiKey(ctx context.Context, req api.CreateApiKeyRequestObject) (api.CreateApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.Body == nil {
		return nil, errNoBody
	}
	in := apikeys.CreateInput{
		Name:        req.Body.Name,
		Permissions: req.Body.Permissions,
		ExpiresAt:   req.Body.ExpiresAt,
	}
	if req.Body.Metadata != nil {
		in.Metadata = *req.Body.Metadata
	}
	if req.Body.AllowedNetworks != nil {
		in.AllowedNetworks = *req.Body.AllowedNetworks
	}
	in.RateLimit = rateLimitInput(req.Body.RateLimit)
	in.Credits = creditsInput(req.Body.Credits)
	// With an Idempotency-Key, the answer is rendered inside the create's
	// unit of work and kept with it (idempotency.go); the same bytes go out.
	call := idemCallFrom(ctx)
	now := h.svc.Now
	issued, err := h.svc.Create(ctx, p, req.Params.AccountId, in,
		call.record(http.StatusCreated, func(is *apikeys.Issued) any { return envelope(is, now()) }))
	if err != nil {
		return nil, err
	}
	if raw, ok := call.answer(); ok {
		return raw, nil
	}
	return api.CreateApiKey201JSONResponse{Body: envelope(issued, h.svc.Now())}, nil
}
