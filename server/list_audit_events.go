package server

import (
	"context"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// ListAuditEvents is GET /audit-events (listAuditEvents).
func (h *handlers) ListAuditEvents(ctx context.Context, req api.ListAuditEventsRequestObject) (api.ListAuditEventsResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	q := req.Params
	in := apikeys.AuditInput{KeyID: deref(q.KeyId), Cursor: deref(q.Cursor), Limit: deref(q.Limit)}
	if q.Action != nil {
		in.Action = string(*q.Action)
	}
	page, err := h.svc.ListAuditEvents(ctx, p, q.AccountId, in)
	if err != nil {
		return nil, err
	}
	return &listEventsResponse{events: page.Items, next: page.NextCursor}, nil // render_audit.go
}
