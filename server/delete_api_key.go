package server

import (
	"context"

	"github.com/hsrcpay/apikeys/gen/api"
)

// DeleteApiKey is DELETE /api-keys/{id} (deleteApiKey).
func (h *handlers) DeleteApiKey(ctx context.Context, req api.DeleteApiKeyRequestObject) (api.DeleteApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	k, err := h.svc.Delete(ctx, p, req.Id)
	if err != nil {
		return nil, err
	}
	return api.DeleteApiKey200JSONResponse{Body: viewEnvelope(k, h.svc.Now())}, nil
}
