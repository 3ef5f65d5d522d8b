package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/internal/apierr"
)

// bufferedWriter holds a response until it has been validated.
type bufferedWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferedWriter) Header() http.Header { return b.header }
func (b *bufferedWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}
func (b *bufferedWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

// resetResponse forgets a response that was not sent: its status and every
// header except the request id and Cache-Control, which every answer keeps.
func resetResponse(res *echo.Response) {
	res.Committed, res.Status, res.Size = false, 0, 0
	h := res.Header()
	for k := range h {
		if k != echo.HeaderXRequestID && k != headerCacheControl {
			delete(h, k)
		}
	}
}

// sampleResponses checks the responses of a random share of the requests
// (0 < share < 1) with validateResponse; the others are neither buffered nor
// checked. It runs after the permission check: what is refused before it is
// rendered by renderError alone, whose envelope TestErrorEnvelopesMatchSpec
// holds to the spec for every code.
func (s *Server) sampleResponses(share float64) echo.MiddlewareFunc {
	validate := s.validateResponse
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		// Echo chains a group's middlewares per request: the checking
		// closure is made only for a request in the sample.
		return func(c echo.Context) error {
			if rand.Float64() < share { //nolint:gosec // a sample, not a secret: math/rand/v2's per-thread source costs nanoseconds and no lock
				return validate(next)(c)
			}
			return next(c)
		}
	}
}

// validateResponse buffers the handler's response, error responses included
// (rendered here, while still buffering), checks it against the spec, and
// only then sends it. A response that breaks the spec becomes a logged 500,
// so a test that provokes it fails.
func (s *Server) validateResponse(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		res := c.Response()
		orig := res.Writer
		buf := &bufferedWriter{header: orig.Header().Clone()}
		res.Writer = buf
		defer func() {
			if r := recover(); r != nil {
				// A panic while buffering: drop what was written (the recover
				// middleware renders the 500 on the real writer), or the
				// client would get an empty 200.
				res.Writer = orig
				resetResponse(res)
				panic(r)
			}
		}()
		if err := next(c); err != nil {
			s.renderError(err, c)
		}
		res.Writer = orig

		route, params := routeOf(c)
		verr := openapi3filter.ValidateResponse(context.WithoutCancel(c.Request().Context()), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: &openapi3filter.RequestValidationInput{
				Request: c.Request(), PathParams: params, Route: route,
			},
			Status:  buf.status,
			Header:  buf.header,
			Body:    io.NopCloser(bytes.NewReader(buf.body.Bytes())),
			Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
		})
		h := orig.Header()
		if verr != nil {
			s.responsesInvalid.Inc()
			resetResponse(res)
			s.renderError(apierr.Internal(fmt.Errorf("response violates openapi.yaml (status %d): %w", buf.status, verr)), c)
			return nil
		}
		s.responsesValid.Inc()
		for k := range h {
			delete(h, k)
		}
		for k, v := range buf.header {
			h[k] = v
		}
		orig.WriteHeader(buf.status)
		_, err := orig.Write(buf.body.Bytes())
		return err
	}
}
