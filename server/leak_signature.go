package server

import (
	"bytes"
	"context"
	"errors"
	"io"

	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/secretscan"
)

// The headers GitHub signs a secret scanning report with.
const (
	headerLeakKeyID     = "Github-Public-Key-Identifier"
	headerLeakSignature = "Github-Public-Key-Signature"
)

// authReasonLeakSignature labels a refused report signature in the
// auth-failure metrics and the access log.
const authReasonLeakSignature = "leak_signature"

// verifyLeakSignature is the first step of the GitHub-signature stack: the
// report's raw body must carry GitHub's signature by a key GitHub publishes,
// before anything reads it as JSON or looks up a token. A refusal (401,
// 40104) writes nothing and spends the client address's failed-
// authentication budget, as a bad bearer token does (42901 past it, and
// refused before the signature is even checked while over it). Without
// configured keys the feature is off: 404 (40403).
func (s *Server) verifyLeakSignature(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.leakKeys == nil {
			return apierr.New(api.CodeSecretScanningOff, "Secret scanning is not configured on this server")
		}
		addr := clientAddress(c.RealIP())
		if e := s.refuseBlocked(addr); e != nil {
			return e
		}
		req := c.Request()
		var body []byte
		if req.Body != nil {
			b, err := readBody(req.Body, req.ContentLength)
			if err != nil {
				if isBodyTooLarge(err) {
					return bodyTooLarge()
				}
				return apierr.New(api.CodeMalformedBody, "Could not read the request body")
			}
			body = b
			req.Body = io.NopCloser(bytes.NewReader(body))
		}
		ids, sigs := req.Header.Values(headerLeakKeyID), req.Header.Values(headerLeakSignature)
		err := secretscan.ErrMissing
		if len(ids) == 1 && len(sigs) == 1 { // two of either: which one counts is ambiguous
			err = s.leakKeys.Verify(context.WithoutCancel(req.Context()), ids[0], sigs[0], body)
		}
		if err != nil {
			reason := "bad_signature"
			switch {
			case errors.Is(err, secretscan.ErrMissing):
				reason = "missing"
			case errors.Is(err, secretscan.ErrMalformed):
				reason = "malformed"
			case errors.Is(err, secretscan.ErrUnknownKey):
				reason = "unknown_key"
			}
			if limited := s.authFailed(c, addr, authReasonLeakSignature, reason, true); limited != nil {
				return limited
			}
			e := apierr.New(api.CodeBadLeakSignature, "Invalid secret scanning signature")
			e.Headers = map[string]string{"WWW-Authenticate": `Signature realm="hsrcpay-secret-scanning"`}
			return e
		}
		c.SetRequest(req.WithContext(context.WithValue(req.Context(), leakOriginKey{}, leakOrigin{requestID: requestID(c), clientIP: c.RealIP()})))
		return next(c)
	}
}

// rateLimitLeakReports spends one report of the client address's budget
// (leaks:<address>, HSRCPAY_SECRET_SCANNING_RATE_LIMIT per second): a
// scanner's reports cost store work per token, and its addresses are its
// only identity here.
func (s *Server) rateLimitLeakReports(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res, ok := s.spend(s.limiterContext(c.Request().Context()), requestID(c), "leaks:"+clientAddress(c.RealIP()), s.leakLimit)
		if ok && !res.Allowed {
			s.metrics.RateLimited.WithLabelValues(budgetClientAddress, "none").Inc()
			return tooMany(api.CodeRateLimited, "Too many leak reports from this address", res.RetryAfter)
		}
		return next(c)
	}
}

// leakOrigin is the verified report's request, for the audit events it writes.
type leakOrigin struct{ requestID, clientIP string }

type leakOriginKey struct{}
