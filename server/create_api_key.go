package server

import (
	"context"

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
	issued, err := h.svc.Create(ctx, p, req.Params.AccountId, in)
	if err != nil {
		return nil, err
	}
	return api.CreateApiKey201JSONResponse{Body: envelope(issued, h.svc.Now())}, nil
}
