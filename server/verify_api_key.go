package server

import (
	"context"
	"net/http"
	"strconv"
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
// writes (encoding/json's, HTML-safe, a final newline), appended field by
// field to a pooled buffer (appendVerifyEnvelope) and sent in one Write.
// The generated response's encoding/json sorted and copied the permissions
// map value by value through reflection (~6% of verify's CPU), and
// goccy/go-json's encoder after it still cost ~9% of the in-process
// request (BenchmarkVerify/prod). TestVerifyEncodingMatchesJSON holds the
// bytes to encoding/json's over generated verdicts.
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
	return writeAppended(w, func(b []byte) ([]byte, error) { return appendVerifyEnvelope(b, &r.body) })
}

// appendVerifyEnvelope appends the envelope's JSON as json.Encoder writes
// it: fields in the generated types' order, omitempty pointers left out
// when nil, a nil map or slice behind a pointer as null, map keys sorted,
// times as time.Time's MarshalJSON (refusing the same ones), a final
// newline.
func appendVerifyEnvelope(b []byte, env *api.VerifyApiKeyEnvelope) ([]byte, error) {
	d := &env.Data
	b = append(b, `{"data":{`...)
	if d.AccountId != nil {
		b = append(b, `"account_id":`...)
		b = appendJSONString(b, *d.AccountId)
		b = append(b, ',')
	}
	b = append(b, `"code":`...)
	b = appendJSONString(b, string(d.Code))
	if d.CreditsRemaining != nil {
		b = append(b, `,"credits_remaining":`...)
		b = strconv.AppendInt(b, *d.CreditsRemaining, 10)
	}
	var err error
	b = append(b, `,"expires_at":`...)
	if b, err = appendTimePtr(b, d.ExpiresAt); err != nil {
		return b, err
	}
	b = append(b, `,"grace_period_ends_at":`...)
	if b, err = appendTimePtr(b, d.GracePeriodEndsAt); err != nil {
		return b, err
	}
	if d.Id != nil {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, *d.Id)
	}
	if d.InGracePeriod != nil {
		b = append(b, `,"in_grace_period":`...)
		b = strconv.AppendBool(b, *d.InGracePeriod)
	}
	if d.Managed != nil {
		b = append(b, `,"managed":`...)
		b = strconv.AppendBool(b, *d.Managed)
	}
	if d.MissingPermissions != nil {
		b = append(b, `,"missing_permissions":`...)
		b = appendJSONStrings(b, *d.MissingPermissions)
	}
	if d.Mode != nil {
		b = append(b, `,"mode":`...)
		b = appendJSONString(b, string(*d.Mode))
	}
	if d.Permissions != nil {
		b = append(b, `,"permissions":`...)
		b = appendPermissions(b, *d.Permissions)
	}
	if d.RetryAfterSeconds != nil {
		b = append(b, `,"retry_after_seconds":`...)
		b = strconv.AppendInt(b, int64(*d.RetryAfterSeconds), 10)
	}
	if d.Type != nil {
		b = append(b, `,"type":`...)
		b = appendJSONString(b, string(*d.Type))
	}
	b = append(b, `,"valid":`...)
	b = strconv.AppendBool(b, d.Valid)
	b = append(b, `},"message":`...)
	b = appendJSONString(b, env.Message)
	b = append(b, `,"success":`...)
	b = strconv.AppendBool(b, env.Success)
	return append(b, "}\n"...), nil
}

// spendVerified spends the budgets of the key verify found working: its
// credential's (mode:<key id>) and its account's (mode:account:<id>), with
// the middleware's helper, so that the key spends exactly as if it had made
// a request itself. It reports how long until there is room when either
// budget refused. The RateLimit-* headers stay the caller's: the verified
// key's budgets show in the verdict only. A limiter failure (logged) spends
// nothing and limits nothing, as for requests.
func (s *Server) spendVerified(ctx context.Context, requestID string, mode apikey.Mode, k *apikey.Key) (time.Duration, bool) {
	res, _, ok := s.spendBudgets(s.limiterContext(ctx), requestID, mode, k.ID, k.AccountID, k.RateLimit)
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
