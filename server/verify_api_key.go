package server

import (
	"context"
	"net/http"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// VerifyApiKey is POST /api-keys/verify (verifyApiKey). Every verdict about
// the key is a 200; the errors are the request's (the caller's credential,
// its own budgets, the body, an unknown permission, the store).
func (h *handlers) VerifyApiKey(ctx context.Context, req api.VerifyApiKeyRequestObject) (api.VerifyApiKeyResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if req.Body == nil {
		return nil, errNoBody
	}
	in := apikeys.VerifyInput{Token: req.Body.Key}
	if req.Body.Permissions != nil {
		in.Permissions = *req.Body.Permissions
	}
	if req.Body.ClientIp != nil {
		in.ClientIP = *req.Body.ClientIp
	}
	cost := int64(1) // the spec's default
	if req.Body.Cost != nil {
		cost = int64(*req.Body.Cost)
	}
	v, err := h.svc.Verify(ctx, p, in)
	if err != nil {
		return nil, err
	}
	// A key that works spends its own budgets, as a request it made would:
	// over them, that is the verdict, before any about permissions. Only a
	// caller that may see the key (its account and mode, policy.Verifies)
	// gets a verdict that Works: anyone else gets NOT_FOUND and spends
	// nothing of the key's, so an outsider holding a public publishable key
	// cannot spend its owner's budgets through verify either.
	if v.Works() {
		if wait, limited := h.spendKey(ctx, p.RequestID, v.Mode, v.Key); limited {
			v.OverBudget(wait)
		}
	}
	// Credits last (rule 24): only a verify that is VALID after every other
	// check spends them, in the store, exactly.
	if err := h.svc.SpendCredits(ctx, v, cost); err != nil {
		return nil, err
	}
	return newVerifyResponse(v), nil
}

// verifyResponse is verify's 200: the bytes api.VerifyApiKey200JSONResponse
// writes (encoding/json's, HTML-safe, a final newline), encoded by
// goccy/go-json (writeJSON) instead of the generated response's
// encoding/json, whose reflection sorted and copied the permissions map
// value by value (the whole encode was ~6% of verify's CPU).
// TestVerifyEncodingMatchesJSON holds the bytes to encoding/json's over
// generated verdicts.
type verifyResponse struct {
	body api.VerifyApiKeyEnvelope
	// What body.Data points to, kept here: one allocation per response.
	mode  api.VerifyApiKeyResultMode
	typ   api.VerifyApiKeyResultType
	perms api.Permissions
	retry int
}

func newVerifyResponse(v *apikeys.Verdict) *verifyResponse {
	r := &verifyResponse{body: api.VerifyApiKeyEnvelope{Message: "success", Success: true}}
	r.body.Data = toVerifyResult(v, r)
	return r
}

func (r *verifyResponse) VisitVerifyApiKeyResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body)
}

// spendVerified spends the budgets of the key verify found working: its
// credential's (mode:<key id>) and its account's (mode:account:<id>), with
// the middleware's helper, so that the key spends exactly as if it had made
// a request itself. It reports how long until there is room when either
// budget refused. The RateLimit-* headers stay the caller's: the verified
// key's budgets show in the verdict only. A limiter failure (logged) spends
// nothing and limits nothing, as for requests.
func (s *Server) spendVerified(ctx context.Context, requestID string, mode apikey.Mode, k *apikey.Key) (time.Duration, bool) {
	res, _, ok := s.spendBudgets(context.WithoutCancel(ctx), requestID, mode, k.ID, k.AccountID, k.RateLimit)
	if !ok || res.Allowed {
		return 0, false
	}
	return res.RetryAfter, true
}

// toVerifyResult is a verdict as the spec renders it: the key's details only
// when the caller may see it (never for NOT_FOUND), never its secret.
// The values the result points to are kept in store.
func toVerifyResult(v *apikeys.Verdict, store *verifyResponse) api.VerifyApiKeyResult {
	r := api.VerifyApiKeyResult{Valid: v.Valid(), Code: api.VerifyCode(v.Code)}
	k := v.Key
	if k == nil {
		return r
	}
	store.perms = api.Permissions(k.Permissions)
	if store.perms == nil {
		store.perms = api.Permissions{}
	}
	store.mode, store.typ = api.VerifyApiKeyResultMode(v.Mode), api.VerifyApiKeyResultType(k.Type)
	r.Id, r.AccountId, r.Mode, r.Type = &k.ID, &k.AccountID, &store.mode, &store.typ
	r.Managed, r.Permissions, r.ExpiresAt = &k.Managed, &store.perms, k.ExpiresAt
	// ResolveKey matched the replaced secret inside its grace period.
	r.InGracePeriod = &v.Previous
	if v.Previous {
		r.GracePeriodEndsAt = k.PrevSecretExpiresAt
	}
	if v.Code == apikeys.VerdictInsufficientPermissions {
		r.MissingPermissions = &v.Missing
	}
	r.CreditsRemaining = v.CreditsRemaining
	if v.Code == apikeys.VerdictRateLimited {
		store.retry = max(1, ceilSeconds(v.RetryAfter))
		r.RetryAfterSeconds = &store.retry
	}
	return r
}
