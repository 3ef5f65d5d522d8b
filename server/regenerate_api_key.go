package server

import (
	"context"
	"net/http"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikeys"
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
	// With an Idempotency-Key, the answer is rendered inside the rotation's
	// unit of work and kept with it (idempotency.go); the same bytes go out.
	call := idemCallFrom(ctx)
	now := h.svc.Now
	issued, err := h.svc.Regenerate(ctx, p, req.Id, grace,
		call.record(http.StatusOK, func(is *apikeys.Issued) any { return envelope(is, now()) }))
	if err != nil {
		return nil, err
	}
	if raw, ok := call.answer(); ok {
		return raw, nil
	}
	return api.RegenerateApiKey200JSONResponse{Body: envelope(issued, h.svc.Now())}, nil
}
