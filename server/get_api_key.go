package server

import (
	"context"

	"github.com/hsrcpay/apikeys/gen/api"
)

// GetApiKey is GET /api-keys/{id} (getApiKey).
func (h *handlers) GetApiKey(ctx context.Context, req api.GetApiKeyRequestObject) (api.GetApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	k, err := h.svc.Get(ctx, p, req.Id)
	if err != nil {
		return nil, err
	}
	return &getKeyResponse{key: k, now: h.svc.Now()}, nil // render_reads.go
}
