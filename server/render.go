package server

import (
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// The wire forms of domain values, shared by every operation.

func envelope(is *apikeys.Issued, now time.Time) api.ApiKeyEnvelope {
	return api.ApiKeyEnvelope{Message: "success", Success: true, Data: toAPIKey(is.Key, is.Secret, now)}
}

func toAPIKey(k *apikey.Key, secret string, now time.Time) api.ApiKey {
	status := api.ApiKeyStatus(k.Status)
	if k.Status == apikey.StatusActive && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
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

func createdBy(a apikey.Actor) api.CreatedBy {
	return api.CreatedBy{Kind: api.CreatedByKind(a.Kind), Id: a.ID, RequestId: a.RequestID}
}
