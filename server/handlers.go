package server

import (
	"context"
	"errors"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/store"
)

// handlers implements the generated api.StrictServerInterface: one method
// per operation in openapi.yaml. Requests reach it authenticated, authorized
// and validated; errors it returns are rendered as the envelope.
type handlers struct {
	svc *apikeys.Service
}

var _ api.StrictServerInterface = (*handlers)(nil)

func (h *handlers) CreateApiKey(ctx context.Context, req api.CreateApiKeyRequestObject) (api.CreateApiKeyResponseObject, error) {
	p := auth.FromContext(ctx)
	if p == nil || req.Body == nil {
		return nil, apierr.Internal(errors.New("create: no principal or body"))
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

func (h *handlers) RegenerateApiKey(ctx context.Context, req api.RegenerateApiKeyRequestObject) (api.RegenerateApiKeyResponseObject, error) {
	p := auth.FromContext(ctx)
	if p == nil {
		return nil, apierr.Internal(errors.New("regenerate: no principal"))
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

func envelope(is *apikeys.Issued, now time.Time) api.ApiKeyEnvelope {
	return api.ApiKeyEnvelope{Message: "success", Success: true, Data: toAPIKey(is.Key, is.Secret, now)}
}

func toAPIKey(k *store.Key, secret string, now time.Time) api.ApiKey {
	status := api.ApiKeyStatus(k.Status)
	if k.Status == store.StatusActive && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		status = api.EXPIRED
	}
	meta := api.Metadata(k.Metadata)
	if meta == nil {
		meta = api.Metadata{}
	}
	perms := api.Permissions(k.Permissions)
	if perms == nil {
		perms = api.Permissions{}
	}
	return api.ApiKey{
		Object:      api.ApiKeyObjectApiKey,
		Id:          k.ID,
		AccountId:   k.AccountID,
		Name:        k.Name,
		Type:        api.ApiKeyType(k.Type),
		Key:         secret,
		LastUsedIp:  k.LastUsedIP,
		LastUsedAt:  k.LastUsedAt,
		Metadata:    meta,
		Permissions: perms,
		Status:      status,
		ExpiresAt:   k.ExpiresAt,
		Managed:     k.Managed,
		Deleted:     k.Deleted,
		CreatedAt:   k.CreatedAt,
		UpdatedAt:   k.UpdatedAt,
		// Shown only while the previous secret still works.
		PreviousKeyExpiresAt: activeUntil(k.PrevSecretExpiresAt, now),
		CreatedBy:            createdBy(k.CreatedBy),
	}
}

func activeUntil(t *time.Time, now time.Time) *time.Time {
	if t == nil || !now.Before(*t) {
		return nil
	}
	return t
}

func createdBy(a store.Actor) api.CreatedBy {
	return api.CreatedBy{Kind: api.CreatedByKind(a.Kind), Id: a.ID, RequestId: a.RequestID}
}
