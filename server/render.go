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
		KeyHint:              hint(k.KeyHint),
		AllowedNetworks:      networks(k),
		RateLimit:            rateLimit(k),
		Credits:              credits(k, now),
	}
}

// credits are a key's credits as rendered at now (a refill that is due
// applied): absent when it has none.
func credits(k *apikey.Key, now time.Time) *api.Credits {
	c := k.Credits.At(now)
	if c == nil {
		return nil
	}
	out := &api.Credits{Remaining: c.Remaining}
	if r := c.Refill; r != nil {
		out.Refill = &api.CreditRefill{Amount: r.Amount, Interval: api.CreditRefillInterval(r.Interval)}
		if r.Interval == apikey.RefillMonthly {
			day := r.Day
			out.Refill.Day = &day
		}
	}
	return out
}

// creditsInput is a request's credits for the use cases.
func creditsInput(c *api.Credits) *apikeys.CreditsInput {
	if c == nil {
		return nil
	}
	in := &apikeys.CreditsInput{Remaining: c.Remaining}
	if r := c.Refill; r != nil {
		in.Refill = &apikey.CreditRefill{Amount: r.Amount, Interval: string(r.Interval)}
		if r.Day != nil {
			in.Refill.Day = *r.Day
		}
	}
	return in
}

// rateLimit is a key's own rate limit as rendered: absent when it has none.
func rateLimit(k *apikey.Key) *api.RateLimit {
	if k.RateLimit == nil {
		return nil
	}
	return &api.RateLimit{Limit: k.RateLimit.Limit, Window: k.RateLimit.WindowString()}
}

// rateLimitInput is a request's rate_limit for the use cases.
func rateLimitInput(r *api.RateLimit) *apikeys.RateLimitInput {
	if r == nil {
		return nil
	}
	return &apikeys.RateLimitInput{Limit: r.Limit, Window: r.Window}
}

// networks is a key's allowed_networks as rendered: absent when it works
// from any address.
func networks(k *apikey.Key) *api.AllowedNetworks {
	if len(k.AllowedNetworks) == 0 {
		return nil
	}
	n := api.AllowedNetworks(apikey.NetworkStrings(k.AllowedNetworks))
	return &n
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

// toAPIKeyView is a key as read: everything but the secret.
func toAPIKeyView(k *apikey.Key, now time.Time) api.ApiKeyView {
	full := toAPIKey(k, "", now)
	return api.ApiKeyView{
		Object: api.ApiKeyViewObjectApiKey, Id: full.Id, AccountId: full.AccountId, Name: full.Name,
		Type: api.ApiKeyViewType(full.Type), KeyHint: full.KeyHint, LastUsedIp: full.LastUsedIp,
		Metadata: full.Metadata, Permissions: full.Permissions, Status: api.ApiKeyViewStatus(full.Status),
		LastUsedAt: full.LastUsedAt, ExpiresAt: full.ExpiresAt, Managed: full.Managed, Deleted: full.Deleted,
		CreatedAt: full.CreatedAt, UpdatedAt: full.UpdatedAt, PreviousKeyExpiresAt: full.PreviousKeyExpiresAt,
		CreatedBy: full.CreatedBy, AllowedNetworks: full.AllowedNetworks, RateLimit: full.RateLimit,
		Credits: full.Credits,
	}
}

func viewEnvelope(k *apikey.Key, now time.Time) api.ApiKeyViewEnvelope {
	return api.ApiKeyViewEnvelope{Message: "success", Success: true, Data: toAPIKeyView(k, now)}
}

// hint is the key hint as the spec renders it: null when none was kept.
func hint(h string) *string {
	if h == "" {
		return nil
	}
	return &h
}
