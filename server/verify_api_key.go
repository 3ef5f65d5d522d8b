package server

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

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
	return newVerifyResponse(v), nil
}

// verifyResponse is verify's 200: the bytes api.VerifyApiKey200JSONResponse
// writes (encoding/json's, HTML-safe, a final newline), encoded by hand
// without reflection (encoding/json sorts and copies the permissions map
// value by value; the whole encode was ~6% of verify's CPU).
// TestVerifyEncodingMatchesJSON holds the bytes to encoding/json's over
// generated verdicts; whatever the hand encoder does not cover (a time
// outside RFC 3339, say) is encoded by encoding/json as before.
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
	out, ok := appendVerifyEnvelope(make([]byte, 0, 512), &r.body)
	if !ok {
		return api.VerifyApiKey200JSONResponse{Body: r.body}.VisitVerifyApiKeyResponse(w)
	}
	w.Header()[echo.HeaderContentType] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(out)
	return err
}

// jsonContentType is the Content-Type header's value, shared by the
// responses that set it: assigned rather than Header.Set, which allocates
// a slice per response (nothing writes into a header's value slice; Add
// appends past its capacity, so into a copy).
var jsonContentType = []string{echo.MIMEApplicationJSON}

// appendVerifyEnvelope appends the envelope as encoding/json encodes it
// (fields in struct order, omitempty, map keys sorted) and a newline; false
// when a value needs encoding/json's own treatment.
func appendVerifyEnvelope(b []byte, e *api.VerifyApiKeyEnvelope) ([]byte, bool) {
	d := &e.Data
	ok := true
	str := func(name, v string) {
		b = append(b, name...)
		b = appendJSONString(b, v)
	}
	tm := func(name string, t *time.Time) {
		b = append(b, name...)
		if t == nil {
			b = append(b, "null"...)
			return
		}
		var tok bool
		if b, tok = appendJSONTime(b, *t); !tok {
			ok = false
		}
	}
	strs := func(vs []string) {
		if vs == nil {
			b = append(b, "null"...)
			return
		}
		b = append(b, '[')
		for i, v := range vs {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendJSONString(b, v)
		}
		b = append(b, ']')
	}
	b = append(b, `{"data":{`...)
	if d.AccountId != nil {
		str(`"account_id":`, *d.AccountId)
		b = append(b, ',')
	}
	str(`"code":`, string(d.Code))
	tm(`,"expires_at":`, d.ExpiresAt)
	tm(`,"grace_period_ends_at":`, d.GracePeriodEndsAt)
	if d.Id != nil {
		str(`,"id":`, *d.Id)
	}
	if d.InGracePeriod != nil {
		b = strconv.AppendBool(append(b, `,"in_grace_period":`...), *d.InGracePeriod)
	}
	if d.Managed != nil {
		b = strconv.AppendBool(append(b, `,"managed":`...), *d.Managed)
	}
	if d.MissingPermissions != nil {
		b = append(b, `,"missing_permissions":`...)
		strs(*d.MissingPermissions)
	}
	if d.Mode != nil {
		str(`,"mode":`, string(*d.Mode))
	}
	if d.Permissions != nil {
		b = append(b, `,"permissions":`...)
		if *d.Permissions == nil {
			b = append(b, "null"...)
		} else {
			b = append(b, '{')
			var arr [16]string // the keys sorted, on the stack for a usual key
			names := arr[:0]
			for k := range *d.Permissions {
				names = append(names, k)
			}
			slices.Sort(names)
			for i, k := range names {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(appendJSONString(b, k), ':')
				strs((*d.Permissions)[k])
			}
			b = append(b, '}')
		}
	}
	if d.RetryAfterSeconds != nil {
		b = strconv.AppendInt(append(b, `,"retry_after_seconds":`...), int64(*d.RetryAfterSeconds), 10)
	}
	if d.Type != nil {
		str(`,"type":`, string(*d.Type))
	}
	b = strconv.AppendBool(append(b, `,"valid":`...), d.Valid)
	str(`},"message":`, e.Message)
	b = strconv.AppendBool(append(b, `,"success":`...), e.Success)
	b = append(b, "}\n"...)
	return b, ok
}

// appendJSONString appends s quoted as encoding/json quotes it: printable
// ASCII as is, anything else (escapes, HTML characters, non-ASCII, invalid
// UTF-8) by encoding/json itself.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always encodes
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONTime appends t as time.Time's MarshalJSON does (RFC 3339 with
// nanoseconds); false for what MarshalJSON refuses or writes otherwise (a
// year outside 0-9999, an offset that is not whole minutes under a day).
func appendJSONTime(b []byte, t time.Time) ([]byte, bool) {
	if y := t.Year(); y < 0 || y > 9999 {
		return b, false
	}
	if _, off := t.Zone(); off%60 != 0 || off <= -24*3600 || off >= 24*3600 {
		return b, false
	}
	b = append(b, '"')
	b = t.AppendFormat(b, time.RFC3339Nano)
	return append(b, '"'), true
}

// spendVerified spends the budgets of the key verify found working: its
// credential's (mode:<key id>) and its account's (mode:account:<id>), with
// the middleware's helper, so that the key spends exactly as if it had made
// a request itself. It reports how long until there is room when either
// budget refused. The RateLimit-* headers stay the caller's: the verified
// key's budgets show in the verdict only. A limiter failure (logged) spends
// nothing and limits nothing, as for requests.
func (s *Server) spendVerified(ctx context.Context, requestID string, mode apikey.Mode, k *apikey.Key) (time.Duration, bool) {
	res, _, ok := s.spendBudgets(context.WithoutCancel(ctx), requestID, mode, k.ID, k.AccountID)
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
	if v.Code == apikeys.VerdictRateLimited {
		store.retry = max(1, ceilSeconds(v.RetryAfter))
		r.RetryAfterSeconds = &store.retry
	}
	return r
}
