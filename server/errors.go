package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/store"
)

// errorEnvelope is the wire form of every error; details is a free map so
// codes can add their own context, as the spec allows.
type errorEnvelope struct {
	Message string    `json:"message"`
	Success bool      `json:"success"`
	Error   errorBody `json:"error"`
}

type errorBody struct {
	Code    api.ErrorCode `json:"code"`
	Message string        `json:"message"`
	// Details is a map[string]any with request_id among the error's own
	// details, or onlyRequestID when it has none: the same JSON (a map's
	// keys are written sorted) without making a map.
	Details any `json:"details"`
}

type onlyRequestID struct {
	RequestID string `json:"request_id"`
}

// toAPIError maps anything a handler, middleware or Echo returns to an API error.
func toAPIError(err error) *apierr.Error {
	ae := apiError(err)
	if ae.Code == api.CodeInternal {
		return storeFailure(err, ae)
	}
	return ae
}

// storeRetryAfter is the Retry-After of a 503: long enough not to hammer a
// store that is coming back, short enough that a blip costs a client little.
const storeRetryAfter = 1

// storeFailure is the one place a store's failure becomes an answer: a
// store the stores marked unavailable (unreachable, over the store timeout,
// full) is 503 with Retry-After, anything else stays the 500 it is (a bug);
// either says when a write may have committed after all.
func storeFailure(err error, ae *apierr.Error) *apierr.Error {
	if errors.Is(err, store.ErrUnavailable) {
		cause := ae.Cause
		if cause == nil {
			cause = err
		}
		ae = apierr.New(api.CodeStoreUnavailable, "Service unavailable").With("retry_after_seconds", storeRetryAfter)
		ae.Cause = cause
		ae.Headers = map[string]string{"Retry-After": strconv.Itoa(storeRetryAfter)}
	}
	if errors.Is(err, store.ErrOutcomeUnknown) {
		ae = ae.With("outcome", string(api.OutcomeUnknown))
	}
	return ae
}

func apiError(err error) *apierr.Error {
	var ae *apierr.Error
	var af *auth.Failure
	var he *echo.HTTPError
	switch {
	case errors.As(err, &af):
		return af.Err
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &he):
		switch he.Code {
		case http.StatusNotFound:
			return apierr.New(api.CodeRouteNotFound, "No such route")
		case http.StatusMethodNotAllowed:
			return apierr.New(api.CodeMethodNotAllowed, "Method not allowed on this route")
		case http.StatusRequestEntityTooLarge:
			return bodyTooLarge()
		case http.StatusUnsupportedMediaType:
			return unsupportedMediaType()
		case http.StatusBadRequest:
			return apierr.New(api.CodeMalformedBody, "Malformed request")
		}
		return apierr.Internal(err)
	}
	return apierr.Internal(err)
}

func bodyTooLarge() *apierr.Error {
	return apierr.New(api.CodeBodyTooLarge, "Request body too large").With("limit_bytes", maxBodyBytes)
}

func unsupportedMediaType() *apierr.Error {
	return apierr.New(api.CodeUnsupportedMediaType, "Content-Type must be application/json")
}

// renderError writes err as the envelope; it is Echo's HTTPErrorHandler.
func (s *Server) renderError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	ae := toAPIError(err)
	rid := requestID(c)
	var details any = onlyRequestID{rid}
	if len(ae.Details) > 0 {
		m := make(map[string]any, len(ae.Details)+1)
		for k, v := range ae.Details {
			m[k] = v
		}
		m["request_id"] = rid
		details = m
	}
	if ae.Status >= 500 {
		if c.Request().Context().Err() != nil {
			// The client hung up; the failure is the cancelled work, not the server.
			s.log.Info("client went away before the response", "request_id", rid, "err", ae.Error())
		} else {
			s.log.Error("request failed", "request_id", rid, "code", int(ae.Code), "err", ae.Error())
		}
	}
	h := c.Response().Header()
	for k, v := range ae.Headers {
		h.Set(k, v)
	}
	if ae.Status == http.StatusUnauthorized && h.Get("WWW-Authenticate") == "" { // the leak report names its own scheme
		h.Set("WWW-Authenticate", `Bearer realm="hsrcpay"`)
	}
	body := errorEnvelope{Message: ae.Message, Error: errorBody{Code: ae.Code, Message: ae.Message, Details: details}}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.Status)
		return
	}
	// Encoded here rather than with c.JSON: the same bytes (HTML-safe, a
	// final newline) without Echo parsing the query string for ?pretty.
	out, werr := json.Marshal(body)
	if werr == nil {
		h.Set(echo.HeaderContentType, echo.MIMEApplicationJSON)
		c.Response().WriteHeader(ae.Status)
		_, werr = c.Response().Write(append(out, '\n'))
	}
	if werr != nil {
		s.log.Error("writing error response failed", "request_id", rid, "err", werr)
	}
}

// validationError turns kin-openapi's request errors into field-level
// details, never its raw text (which dumps whole schemas).
func validationError(err error) *apierr.Error {
	var fields []apierr.FieldError
	var walk func(error) *apierr.Error
	walk = func(err error) *apierr.Error {
		// A type switch, not errors.As: a RequestError unwraps to the
		// MultiError of its schema errors, which must stay inside it.
		if me, ok := err.(openapi3.MultiError); ok { //nolint:errorlint // an assertion on purpose: errors.As would reach inside a RequestError
			for _, e := range me {
				if ae := walk(e); ae != nil {
					return ae
				}
			}
			return nil
		}
		var re *openapi3filter.RequestError
		if !errors.As(err, &re) {
			fields = append(fields, apierr.FieldError{Location: "body", Field: "", Reason: "invalid request"})
			return nil
		}
		switch {
		case re.Parameter != nil:
			loc := api.FieldErrorLocation(re.Parameter.In)
			reason := re.Reason
			if errors.Is(re.Err, openapi3filter.ErrInvalidRequired) {
				reason = "required parameter is missing"
			} else if r := schemaReasons(re.Err); r != "" {
				reason = r
			} else if reason == "" && re.Err != nil {
				reason = "invalid value"
			}
			fields = append(fields, apierr.FieldError{Location: loc, Field: re.Parameter.Name, Reason: reason})
		case re.RequestBody != nil:
			switch {
			case strings.HasPrefix(re.Reason, "header Content-Type has unexpected value"):
				return unsupportedMediaType()
			case isBodyTooLarge(re.Err):
				return bodyTooLarge()
			case re.Reason == "failed to decode request body":
				return apierr.New(api.CodeMalformedBody, "Request body is not valid JSON")
			case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
				fields = append(fields, apierr.FieldError{Location: "body", Field: "", Reason: "request body is required"})
			default:
				var se *openapi3.SchemaError
				var sme openapi3.MultiError
				switch {
				case errors.As(re.Err, &sme):
					for _, e := range sme {
						if errors.As(e, &se) {
							fields = append(fields, schemaField(se))
						}
					}
				case errors.As(re.Err, &se):
					fields = append(fields, schemaField(se))
				default:
					fields = append(fields, apierr.FieldError{Location: "body", Field: "", Reason: re.Reason})
				}
			}
		default:
			fields = append(fields, apierr.FieldError{Location: "body", Field: "", Reason: re.Reason})
		}
		return nil
	}
	if ae := walk(err); ae != nil {
		return ae
	}
	return apierr.Validation(fields)
}

func schemaField(se *openapi3.SchemaError) apierr.FieldError {
	return apierr.FieldError{Location: "body", Field: "/" + strings.Join(se.JSONPointer(), "/"), Reason: se.Reason}
}

func schemaReasons(err error) string {
	var se *openapi3.SchemaError
	if errors.As(err, &se) {
		return se.Reason
	}
	var me openapi3.MultiError
	if errors.As(err, &me) {
		var parts []string
		for _, e := range me {
			if r := schemaReasons(e); r != "" {
				parts = append(parts, r)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

func isBodyTooLarge(err error) bool {
	var he *echo.HTTPError
	return errors.As(err, &he) && he.Code == http.StatusRequestEntityTooLarge
}

// panicError carries a recovered panic to the error handler as a 500.
type panicError struct{ v any }

func (p panicError) Error() string { return fmt.Sprintf("panic: %v", p.v) }
