package server

import (
	"context"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
)

// RegenerateApiKey is POST /api-keys/{id}/regenerate (regenerateApiKey).
func (h *handlers) RegenerateApiKey(ctx context.Context, req api.RegenerateApiKeyRequestObject) (api.RegenerateApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var grace time.Duration
	if req.Body != nil && req.Body.GracePeriodMinutes != nil {
		grace = time.Duration(*req.Body.GracePeriodMinutes) * time.Minute
	}
	issued, err := h.svc.Regenerate(ctx, p, req.Id, grace)
	if err != nil {
		return nil, err
	}
	return api.RegenerateApiKey200JSONResponse{Body: envelope(issued, h.svc.Now())}, nil
}
