package server

import (
	"context"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
)

// ListApiKeys is GET /api-keys/ (listApiKeys).
func (h *handlers) ListApiKeys(ctx context.Context, req api.ListApiKeysRequestObject) (api.ListApiKeysResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	q := req.Params
	in := apikeys.ListInput{Managed: q.Managed, CreatedBy: deref(q.CreatedBy), Cursor: deref(q.Cursor), Limit: deref(q.Limit)}
	if q.Status != nil {
		in.Status = string(*q.Status)
	}
	if q.Type != nil {
		in.Type = string(*q.Type)
	}
	if q.Deleted != nil {
		in.Deleted = *q.Deleted
	}
	page, err := h.svc.List(ctx, p, q.AccountId, in)
	if err != nil {
		return nil, err
	}
	return &listKeysResponse{keys: page.Items, next: page.NextCursor, now: h.svc.Now()}, nil // render_reads.go
}

// principal is the authenticated caller the middleware stored.
func principal(ctx context.Context) (*auth.Principal, error) {
	if p := auth.FromContext(ctx); p != nil {
		return p, nil
	}
	return nil, errNoPrincipal
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
