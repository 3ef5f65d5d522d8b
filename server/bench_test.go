//go:build unix

package server_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/cputime"

	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// Benchmarks of one request's cost in-process, to compare the spec-driven
// parts (route lookup, request and response validation) with the whole
// handler path. `make bench` runs them; the README's "Benchmarks" section
// explains how the numbers combine.

const benchAcct = "acct_bench"

// benchCreateBody is the create request the load test sends (name varies).
func benchCreateBody(name string) []byte {
	return []byte(`{"name":"` + name + `","permissions":{"payment":["create","read"],"refund":["read"]},"metadata":{"team":"bench"}}`)
}

func newCreateRequest(token string, body []byte) *http.Request {
	req := httptest.NewRequest(http.MethodPost, server.BasePath+"/api-keys/?account_id="+benchAcct, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// BenchmarkRouteLookup is the spec router (gorillamux) finding the operation.
func BenchmarkRouteLookup(b *testing.B) {
	spec, err := server.LoadSpec()
	if err != nil {
		b.Fatal(err)
	}
	req := newCreateRequest("x", nil)
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		_, _, err := spec.Router.FindRoute(req)
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateRequest is the validateRequest middleware's kin-openapi
// call alone, with the middleware's options and route (keep them in step
// with middleware.go), on a prepared create request.
func BenchmarkValidateRequest(b *testing.B) {
	spec, err := server.LoadSpec()
	if err != nil {
		b.Fatal(err)
	}
	body := benchCreateBody("Checkout backend")
	req := newCreateRequest("x", body)
	route, params, err := spec.Operation(req)
	if err != nil {
		b.Fatal(err)
	}
	opts := &openapi3filter.Options{
		MultiError:          true,
		KeepValidatedValue:  true,
		AuthenticationFunc:  openapi3filter.NoopAuthenticationFunc,
		SkipSettingDefaults: true,
	}
	query := req.URL.Query() // parsed once per request, by Echo, in the server
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		req.Body = io.NopCloser(bytes.NewReader(body))
		err := openapi3filter.ValidateRequest(ctx, &openapi3filter.RequestValidationInput{
			Request: req, PathParams: params, QueryParams: query, Route: route, Options: opts,
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateResponse is the validateResponse middleware's
// kin-openapi call alone, on a real 201 create response and on a real 401
// error envelope (what a sample of production's responses, and every
// response under HSRCPAY_VALIDATE_RESPONSES=true, pays).
func BenchmarkValidateResponse(b *testing.B) {
	spec, err := server.LoadSpec()
	if err != nil {
		b.Fatal(err)
	}
	env := testenv.New(b, testenv.Config{})
	m := env.Bootstrap(benchAcct)[apikey.Sandbox]
	n := 0 // names must differ: each run of a sub-benchmark creates a key
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"create_201", m.Secret, http.StatusCreated}, {"error_401", breakChecksum(m.Secret), http.StatusUnauthorized}} {
		b.Run(tc.name, func(b *testing.B) {
			n++
			rec := httptest.NewRecorder()
			env.Server.ServeHTTP(rec, newCreateRequest(tc.token, benchCreateBody(fmt.Sprintf("prepared %d", n))))
			if rec.Code != tc.want {
				b.Fatalf("create: %d %s", rec.Code, rec.Body)
			}
			status, header, body := rec.Code, rec.Header(), rec.Body.Bytes()
			req := newCreateRequest("x", benchCreateBody("Checkout backend"))
			route, params, err := spec.Router.FindRoute(req)
			if err != nil {
				b.Fatal(err)
			}
			opts := &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true}
			ctx := context.Background()
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				err := openapi3filter.ValidateResponse(ctx, &openapi3filter.ResponseValidationInput{
					RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
					Status:                 status,
					Header:                 header,
					Body:                   io.NopCloser(bytes.NewReader(body)),
					Options:                opts,
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkHandler is the whole request path through Echo in-process
// (request id, access log, metrics, route, response validation when on,
// auth on SQLite, permission, rate limit, request validation, handler,
// store write), without a network.
func BenchmarkHandler(b *testing.B) {
	for _, validate := range []bool{true, false} {
		suffix := "/validate_responses=" + map[bool]string{true: "on", false: "off"}[validate]
		b.Run("create"+suffix, func(b *testing.B) {
			env := testenv.New(b, testenv.Config{NoResponseValidation: !validate})
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			i := 0
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				i++
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, newCreateRequest(m.Secret, benchCreateBody(fmt.Sprintf("bench %d", i))))
				if rec.Code != http.StatusCreated {
					b.Fatalf("create: %d %s", rec.Code, rec.Body)
				}
			}
		})
		// The Go client's default: each create with its own Idempotency-Key
		// (a claim unit, then the answer sealed and kept in the create's unit).
		b.Run("create_idempotent"+suffix, func(b *testing.B) {
			env := testenv.New(b, testenv.Config{NoResponseValidation: !validate})
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			i := 0
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				i++
				rec := httptest.NewRecorder()
				req := newCreateRequest(m.Secret, benchCreateBody(fmt.Sprintf("bench %d", i)))
				req.Header.Set("Idempotency-Key", fmt.Sprintf("bench-%d", i))
				env.Server.ServeHTTP(rec, req)
				if rec.Code != http.StatusCreated {
					b.Fatalf("create: %d %s", rec.Code, rec.Body)
				}
			}
		})
		b.Run("regenerate"+suffix, func(b *testing.B) {
			env := testenv.New(b, testenv.Config{NoResponseValidation: !validate})
			m := env.Bootstrap(benchAcct)[apikey.Sandbox]
			url := server.BasePath + "/api-keys/" + m.PublishableID + "/regenerate"
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, url, strings.NewReader(`{}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer "+m.Secret)
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("regenerate: %d %s", rec.Code, rec.Body)
				}
			}
		})
	}
	for _, tc := range []struct {
		name  string
		token func(testenv.Managed) string
		want  int
	}{
		{"rejected_checksum_401", func(m testenv.Managed) string { return breakChecksum(m.Secret) }, http.StatusUnauthorized},
		{"rejected_publishable_403", func(m testenv.Managed) string { return m.Publishable }, http.StatusForbidden},
	} {
		b.Run(tc.name, func(b *testing.B) {
			env := testenv.New(b, testenv.Config{})
			token := tc.token(env.Bootstrap(benchAcct)[apikey.Sandbox])
			body := benchCreateBody("rejected")
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				rec := httptest.NewRecorder()
				env.Server.ServeHTTP(rec, newCreateRequest(token, body))
				if rec.Code != tc.want {
					b.Fatalf("want %d, got %d %s", tc.want, rec.Code, rec.Body)
				}
			}
		})
	}
}

// breakChecksum changes a key's last character, so its checksum no longer matches.
func breakChecksum(tok string) string {
	last := byte('A')
	if tok[len(tok)-1] == 'A' {
		last = 'B'
	}
	return tok[:len(tok)-1] + string(last)
}

// BenchmarkHotPath is the request paths issue 11 budgets (create, and the
// rejections at authentication and at the permission check), as production
// runs them: the JSON access log encoded (to io.Discard, so the log writer's
// own cost is not in it) and response validation as configured. B/op and
// allocs/op are the server's allocations plus the harness's (request and
// recorder: see the harness sub-benchmark), without a client or a network.
func BenchmarkHotPath(b *testing.B) {
	b.Run("harness", func(b *testing.B) {
		body := benchCreateBody("hot")
		b.ReportAllocs()
		for b.Loop() {
			_ = httptest.NewRecorder()
			_ = newHotRequest(b, "x", body)
		}
	})
	for _, mode := range []struct {
		name     string
		validate float64
	}{{"validate=every", 1}, {"validate=sampled", config.DefaultResponseValidation}, {"validate=off", 0}} {
		for _, tc := range []struct {
			name  string
			token func(testenv.Managed) string
			want  int
		}{
			{"create", func(m testenv.Managed) string { return m.Secret }, http.StatusCreated},
			{"rejected_401", func(m testenv.Managed) string { return breakChecksum(m.Secret) }, http.StatusUnauthorized},
			{"rejected_403", func(m testenv.Managed) string { return m.Publishable }, http.StatusForbidden},
		} {
			b.Run(tc.name+"/"+mode.name, func(b *testing.B) {
				env := testenv.New(b, testenv.Config{
					NoResponseValidation: mode.validate == 0,
					SampleResponses:      mode.validate,
					Logger:               slog.New(slog.NewJSONHandler(io.Discard, nil)),
				})
				token := tc.token(env.Bootstrap(benchAcct)[apikey.Sandbox])
				i := 0
				b.ReportAllocs()
				defer cputime.Report(b, cputime.Process())
				for b.Loop() {
					i++
					rec := httptest.NewRecorder()
					env.Server.ServeHTTP(rec, newHotRequest(b, token, benchCreateBody("hot "+strconv.Itoa(i))))
					if rec.Code != tc.want {
						b.Fatalf("want %d, got %d %s", tc.want, rec.Code, rec.Body)
					}
				}
			})
		}
	}
}

// newHotRequest is newCreateRequest as net/http hands it to a handler,
// without httptest.NewRequest's parsing (its 4 KiB reader is the
// connection's in a real server, not the request's).
func newHotRequest(b *testing.B, token string, body []byte) *http.Request {
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost,
		"http://127.0.0.1"+server.BasePath+"/api-keys/?account_id="+benchAcct, bytes.NewReader(body))
	if err != nil {
		b.Fatal(err)
	}
	req.RemoteAddr = "192.0.2.1:1234"
	req.RequestURI = req.URL.RequestURI()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}
