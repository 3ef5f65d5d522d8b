package server

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hsrcpay/apikeys/internal/telemetry"
)

// tracing makes the request's server span (Options.Tracer), the parent of
// the store's and Redis's spans. Its name is the method and the route
// template ("POST /v1/api-keys/", "POST /v1/api-keys/{id}/regenerate"),
// never the path: a path holds key ids, and a client may paste a secret
// into it. It carries the operation id, the status and the request id, and
// nothing from headers, query or body. The probes (/healthz, /readyz) are
// not traced: they are polled every few seconds and say nothing a trace
// would add.
func (s *Server) tracing(tr trace.Tracer, prop propagation.TextMapPropagator) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if p := req.URL.Path; p == "/healthz" || p == "/readyz" {
				return next(c)
			}
			ctx := req.Context()
			if prop != nil {
				ctx = prop.Extract(ctx, propagation.HeaderCarrier(req.Header))
			}
			method := spanMethod(req.Method)
			ctx, span := tr.Start(ctx, method, trace.WithSpanKind(trace.SpanKindServer),
				trace.WithAttributes(attribute.String("http.request.method", method)))
			defer span.End()
			c.SetRequest(req.WithContext(ctx))
			if err := next(c); err != nil {
				c.Error(err) // rendered here, so that the span sees the status sent
			}
			status := c.Response().Status
			attrs := []attribute.KeyValue{
				attribute.Int("http.response.status_code", status),
				attribute.String("hsrcpay.request_id", requestID(c)),
			}
			if r, _ := routeOf(c); r != nil {
				route := BasePath + r.Path
				span.SetName(method + " " + route)
				attrs = append(attrs, attribute.String("http.route", route), attribute.String("hsrcpay.operation", r.Operation.OperationID))
			} else if p := c.Path(); p != "" && p != BasePath+"/*" && p != "/*" {
				// An Echo route of its own (the docs): its template.
				span.SetName(method + " " + p)
				attrs = append(attrs, attribute.String("http.route", p))
			}
			span.SetAttributes(attrs...)
			if status >= http.StatusInternalServerError {
				span.SetStatus(codes.Error, http.StatusText(status))
			}
			return nil
		}
	}
}

// spanMethod is the method as semantic conventions want it: a known one, or
// _OTHER (a client's invented method is unbounded input).
func spanMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "_OTHER"
}

// tracer is the server's tracer, or nil when tracing is off.
func tracerOf(o Options) trace.Tracer {
	if o.Tracer == nil {
		return nil
	}
	return o.Tracer.Tracer(telemetry.Scope)
}
