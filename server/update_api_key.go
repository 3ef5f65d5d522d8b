package server

import (
	"context"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// UpdateApiKey is PATCH /api-keys/{id} (updateApiKey).
func (h *handlers) UpdateApiKey(ctx context.Context, req api.UpdateApiKeyRequestObject) (api.UpdateApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.Body == nil {
		return nil, errNoBody
	}
	in := apikeys.UpdateInput{Name: req.Body.Name, ExpiresAt: req.Body.ExpiresAt, AllowedNetworks: req.Body.AllowedNetworks,
		RateLimit: rateLimitInput(req.Body.RateLimit), Credits: creditsInput(req.Body.Credits), CreditsAdd: req.Body.CreditsAdd}
	if req.Body.Metadata != nil {
		in.Metadata = *req.Body.Metadata
	}
	if req.Body.Status != nil {
		s := string(*req.Body.Status)
		in.Status = &s
	}
	k, err := h.svc.Update(ctx, p, req.Id, in)
	if err != nil {
		return nil, err
	}
	return api.UpdateApiKey200JSONResponse{Body: viewEnvelope(k, h.svc.Now())}, nil
}
