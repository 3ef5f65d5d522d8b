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
	list := api.AuditEventList{Object: api.AuditEventListObjectList, Data: make([]api.AuditEvent, 0, len(page.Items)), HasMore: page.NextCursor != ""}
	for i := range page.Items {
		list.Data = append(list.Data, toAuditEvent(&page.Items[i]))
	}
	if page.NextCursor != "" {
		list.NextCursor = &page.NextCursor
	}
	return &listEventsResponse{body: api.AuditEventListEnvelope{Message: "success", Success: true, Data: list}}, nil // render_reads.go
}
