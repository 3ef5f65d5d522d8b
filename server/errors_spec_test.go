package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/auth"
)

// TestErrorEnvelopesMatchSpec holds renderError to openapi.yaml: every error
// code the spec lists, rendered as the server renders it (request id and
// Cache-Control from the real middlewares, the details and headers each code
// carries), is validated with kin-openapi against every operation that
// declares the code's status. In production only a sample of the responses
// past authentication, budgets and permission is checked at run time (see
// Options.ResponseValidation); the rejections before them are this
// renderer's alone, so this test is what keeps them to the spec. Every
// operation must declare the statuses any request can meet (400, 401, 429,
// 500, and 403 under the bearer stack), so the check covers each
// operation's rejections.
func TestErrorEnvelopesMatchSpec(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{spec: spec, log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	e.HTTPErrorHandler = s.renderError

	codes := spec.Doc.Components.Schemas["ErrorCode"].Value.Enum
	if len(codes) < 30 {
		t.Fatalf("the spec's ErrorCode lists %d codes", len(codes))
	}
	checked := map[api.ErrorCode]int{}
	ops := 0
	for path, item := range spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops++
			// 403 comes from the bearer stack's permission check; the leak
			// report's signature stack has none (stacks.go).
			need := []int{400, 401, 429, 500}
			if spec.Authentication[op.OperationID] == AuthBearer {
				need = append(need, 403)
			}
			for _, status := range need {
				if op.Responses.Status(status) == nil {
					t.Errorf("%s does not declare %d, which any request can meet", op.OperationID, status)
				}
			}
			target := BasePath + regexp.MustCompile(`\{[^}]+\}`).ReplaceAllString(path, "key_1")
			for _, v := range codes {
				code := api.ErrorCode(v.(float64))
				status := int(code) / 100
				if op.Responses.Status(status) == nil {
					continue
				}
				for _, ae := range renderedErrors(code) {
					req := httptest.NewRequest(method, target, nil)
					route, params, err := spec.Router.FindRoute(req)
					if err != nil {
						t.Fatalf("%s %s: %v", method, target, err)
					}
					rec := httptest.NewRecorder()
					c := e.NewContext(req, rec)
					h := noStore(s.requestID(func(c echo.Context) error {
						if code == api.CodeRateLimited {
							// rateLimit's headers, which a 42900 carries.
							h := c.Response().Header()
							h.Set("RateLimit-Limit", "25")
							h.Set("RateLimit-Remaining", "0")
							h.Set("RateLimit-Reset", "1")
						}
						return ae
					}))
					if err := h(c); err != nil {
						s.renderError(err, c)
					}
					if rec.Code != status {
						t.Fatalf("%d rendered as %d", code, rec.Code)
					}
					verr := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
						RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
						Status:                 rec.Code,
						Header:                 rec.Header(),
						Body:                   io.NopCloser(strings.NewReader(rec.Body.String())),
						Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
					})
					if verr != nil {
						t.Errorf("%s: %d (%v) breaks the spec: %v\n%s", op.OperationID, code, ae, verr, rec.Body)
					}
					checked[code]++
				}
			}
		}
	}
	if ops < 7 {
		t.Fatalf("only %d operations in the spec", ops)
	}
	for _, v := range codes {
		code := api.ErrorCode(v.(float64))
		// 405 is answered before any operation is found: no operation declares it.
		if checked[code] == 0 && code != api.CodeMethodNotAllowed {
			t.Errorf("code %d: no operation declares status %d, so its envelope was never checked", code, int(code)/100)
		}
	}
}

// renderedErrors are the forms an error code takes when the server returns
// it: the constructors the middlewares use (with their details and headers),
// and for every code its plain form and one with details a use case adds.
func renderedErrors(code api.ErrorCode) []error {
	out := []error{
		apierr.New(code, "plain"),
		apierr.New(code, "with details").With("id", "key_1").With("missing", []string{"payment:refund"}).
			With("account_id", "acct_1").With("n", 3),
	}
	switch code {
	case api.CodeValidationFailed:
		var fields []apierr.FieldError
		for _, loc := range []api.FieldErrorLocation{api.Query, api.Path, api.Body, api.Header} {
			fields = append(fields, apierr.FieldError{Location: loc, Field: "/name", Reason: "must be given once"})
		}
		out = append(out, apierr.Validation(fields), apierr.Validation(nil),
			validationError(errors.New("not a kin-openapi error")))
	case api.CodeMalformedBody:
		out = append(out, toAPIError(echo.NewHTTPError(http.StatusBadRequest)))
	case api.CodeInvalidCredentials, api.CodeMissingCredentials, api.CodeExpiredCredentials:
		out = append(out, &auth.Failure{Reason: auth.ReasonUnknownKey, Err: apierr.New(code, "via auth")})
	case api.CodeBodyTooLarge:
		out = append(out, bodyTooLarge(), toAPIError(echo.ErrStatusRequestEntityTooLarge))
	case api.CodeUnsupportedMediaType:
		out = append(out, unsupportedMediaType(), toAPIError(echo.ErrUnsupportedMediaType))
	case api.CodeRateLimited, api.CodeTooManyAuthFailures:
		out = append(out, tooMany(code, "budget", 1500*time.Millisecond), tooMany(code, "budget", 0))
	case api.CodeRouteNotFound:
		out = append(out, apierr.New(code, "No such route").With("hint", "did you mean /v1/api-keys/ (with the trailing slash)?"))
	case api.CodeMethodNotAllowed:
		ae := apierr.New(code, "Method not allowed on this route").With("method", http.MethodPut)
		ae.Headers = map[string]string{"Allow": "GET, PATCH, DELETE"}
		out = append(out, ae)
	case api.CodeInternal:
		out = append(out, apierr.Internal(errors.New("boom")), panicError{"boom"}, fmt.Errorf("wrapped: %w", io.ErrUnexpectedEOF))
	}
	return out
}

// TestErrorCodesStatus: every code's status is its first three digits, as
// apierr.New assumes.
func TestErrorCodesStatus(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range spec.Doc.Components.Schemas["ErrorCode"].Value.Enum {
		code := api.ErrorCode(v.(float64))
		if st := apierr.New(code, "x").Status; http.StatusText(st) == "" || strconv.Itoa(st) != strconv.Itoa(int(code))[:3] {
			t.Errorf("code %d: status %d", code, st)
		}
	}
}

// TestRenderErrorBytes: the envelope renderError writes is byte for byte
// what encoding the whole envelope, details as a map, with Echo's JSON
// serializer wrote before (json.Encoder: HTML-safe, a final newline), for
// every form of every code.
func TestRenderErrorBytes(t *testing.T) {
	spec, err := LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{spec: spec, log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	for _, v := range spec.Doc.Components.Schemas["ErrorCode"].Value.Enum {
		for _, err := range renderedErrors(api.ErrorCode(v.(float64))) {
			rec := httptest.NewRecorder()
			c := e.NewContext(httptest.NewRequest(http.MethodGet, "/v1/x?pretty", nil), rec)
			setTestState(c, "req_<&>", nil, nil)
			s.renderError(err, c)

			ae := toAPIError(err)
			details := map[string]any{"request_id": "req_<&>"}
			for k, v := range ae.Details {
				details[k] = v
			}
			var want strings.Builder
			if err := json.NewEncoder(&want).Encode(errorEnvelope{Message: ae.Message,
				Error: errorBody{Code: ae.Code, Message: ae.Message, Details: details}}); err != nil {
				t.Fatal(err)
			}
			if rec.Body.String() != want.String() || rec.Header().Get("Content-Type") != "application/json" {
				t.Errorf("%v: got %q (%s), want %q", err, rec.Body, rec.Header().Get("Content-Type"), want.String())
			}
		}
	}
}
