package server

import (
	"context"
	"encoding/hex"
	"errors"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/keys"
)

// ReportLeakedKeys is POST /secret-scanning/github (reportLeakedKeys):
// GitHub's signed report, verified by the signature stack; every token gets
// a label, the business is in apikeys.ReportLeaks.
func (h *handlers) ReportLeakedKeys(ctx context.Context, req api.ReportLeakedKeysRequestObject) (api.ReportLeakedKeysResponseObject, error) {
	if req.Body == nil {
		return nil, errNoBody
	}
	origin, ok := ctx.Value(leakOriginKey{}).(leakOrigin)
	if !ok {
		return nil, apierr.Internal(errors.New("leak report reached without a verified signature"))
	}
	in := make([]apikeys.LeakedToken, len(*req.Body))
	for i, t := range *req.Body {
		in[i] = apikeys.LeakedToken{Token: t.Token}
		if t.Url != nil {
			in[i].URL = *t.Url
		}
		if t.Source != nil {
			in[i].Source = *t.Source
		}
	}
	verdicts, err := h.svc.ReportLeaks(ctx, apikeys.LeakReporter{Scanner: "github", RequestID: origin.requestID, ClientIP: origin.clientIP}, in)
	if err != nil {
		return nil, err
	}
	if h.leaked != nil {
		h.leaked(origin.requestID, verdicts)
	}
	out := make(api.LeakVerdicts, len(in))
	for i, t := range *req.Body {
		label := api.LeakFalsePositive // never ours, or a publishable key: public by design
		if verdicts[i].TruePositive() {
			label = api.LeakTruePositive
		}
		out[i] = api.LeakVerdict{TokenHash: hex.EncodeToString(keys.Hash(t.Token)), TokenType: t.Type, Label: label}
	}
	return api.ReportLeakedKeys200JSONResponse{Body: out}, nil
}

// recordLeaks counts a report's tokens by label and action
// (hsrcpay_secret_scanning_tokens_total) and logs each key it changed, for
// the operators who tell the key's owner (never the token: logs hold no
// token-shaped string).
func (s *Server) recordLeaks(requestID string, vs []apikeys.LeakVerdict) {
	for _, v := range vs {
		label, action := string(api.LeakFalsePositive), v.Action
		if v.TruePositive() {
			label = string(api.LeakTruePositive)
		}
		if action == "" {
			action = "none"
		}
		s.metrics.LeakedTokens.WithLabelValues(label, action).Inc()
		switch v.Action {
		case "":
		case apikeys.LeakPublic: // nothing changed: worth knowing, not a warning
			s.log.Info("publishable key reported as leaked, left unchanged", "request_id", requestID, "key_id", v.KeyID, "mode", string(v.Mode))
		default:
			s.log.Warn("leaked key revoked", "request_id", requestID, "key_id", v.KeyID, "mode", string(v.Mode), "action", v.Action)
		}
	}
}
