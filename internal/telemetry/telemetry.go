// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables: an OTLP/HTTP exporter, the SDK's batching span
// processor and sampler, and the W3C trace-context propagator.
//
// Tracing is off unless asked for, so that a server nobody collects traces
// from pays nothing (no exporter, no goroutine, a no-op tracer): it is on
// when OTEL_TRACES_EXPORTER=otlp, or when that variable is unset and an OTLP
// endpoint is configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); OTEL_TRACES_EXPORTER=none and
// OTEL_SDK_DISABLED=true turn it off whatever else is set.
//
// What spans carry is decided where they are made (server/tracing.go,
// store.WithTracing, RedisHook): route templates, operation ids, statuses,
// outcomes; never a path with ids, a header, a body, a key id, an account
// id, a Redis key or a command's arguments.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ServiceName is service.name unless OTEL_SERVICE_NAME (or service.name in
// OTEL_RESOURCE_ATTRIBUTES) says otherwise.
const ServiceName = "hsrcpay-server"

// Tracing is what Start set up. The zero value is tracing off.
type Tracing struct {
	// Provider makes the tracers (a no-op one when off); never nil from Start.
	Provider trace.TracerProvider
	// Propagator reads an incoming traceparent (nil: none is read).
	Propagator propagation.TextMapPropagator
	// Enabled says whether spans are exported; Why says what decided it.
	Enabled bool
	Why     string

	shutdown func(context.Context) error
}

// Shutdown sends the spans still buffered and stops the exporter (bounded
// by ctx). Nothing to do when tracing is off.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.shutdown == nil {
		return nil
	}
	return t.shutdown(ctx)
}

// Decide reads whether tracing is on from the variables (lookup is
// os.LookupEnv, or a map in tests), and why. An exporter or protocol this
// build does not have is an error, named, rather than silently nothing.
func Decide(lookup func(string) (string, bool)) (on bool, why string, err error) {
	get := func(name string) string {
		v, _ := lookup(name)
		return strings.TrimSpace(v)
	}
	if strings.EqualFold(get("OTEL_SDK_DISABLED"), "true") {
		return false, "OTEL_SDK_DISABLED=true", nil
	}
	for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
		if p := get(name); p != "" {
			if p != "http/protobuf" {
				return false, "", fmt.Errorf("%s=%q: this build exports OTLP over HTTP only: want http/protobuf (or unset)", name, p)
			}
			break // the traces-specific one wins
		}
	}
	switch exp := strings.ToLower(get("OTEL_TRACES_EXPORTER")); exp {
	case "none":
		return false, "OTEL_TRACES_EXPORTER=none", nil
	case "otlp":
		return true, "OTEL_TRACES_EXPORTER=otlp", nil
	case "":
		for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"} {
			if get(name) != "" {
				return true, name + " is set", nil
			}
		}
		return false, "no OTLP endpoint configured", nil
	default:
		return false, "", fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp or none (this build has no other exporter)", exp)
	}
}

// Start sets tracing up from the variables. Off, it returns a no-op
// provider and nothing runs. On, spans are batched (OTEL_BSP_*) and sent to
// the OTLP/HTTP endpoint (OTEL_EXPORTER_OTLP_*: endpoint, headers, timeout,
// compression, certificates), sampled as OTEL_TRACES_SAMPLER says (default
// parentbased_always_on), with the resource OTEL_SERVICE_NAME and
// OTEL_RESOURCE_ATTRIBUTES describe. The exporter's own failures (a
// collector that is away) go to log, never to the requests: spans are
// dropped, not waited for. version is service.version.
func Start(ctx context.Context, lookup func(string) (string, bool), version string, log *slog.Logger) (*Tracing, error) {
	on, why, err := Decide(lookup)
	if err != nil {
		return nil, err
	}
	t := &Tracing{Provider: noop.NewTracerProvider(), Enabled: on, Why: why}
	if !on {
		return t, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_*: %w", err)
	}
	// Later options win: our defaults, then what the environment says.
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", ServiceName), attribute.String("service.version", version)),
		resource.WithTelemetrySDK(),
		resource.WithFromEnv(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	if log != nil {
		// The SDK reports export failures here (otherwise to the standard
		// logger). An error names the endpoint, never the headers.
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing: spans not exported", "err", err)
		}))
	}
	t.Provider, t.shutdown = tp, tp.Shutdown
	t.Propagator = Propagator(lookup)
	return t, nil
}

// Propagator is the W3C trace-context propagator, unless OTEL_PROPAGATORS
// leaves tracecontext out (e.g. "none"): then an incoming traceparent is
// ignored and every request starts a trace of its own. Baggage is never
// read: it is free-form client input, and nothing here would use it.
//
// With the default sampler (parentbased_always_on) a caller's traceparent
// decides whether its request is sampled; a service exposed to untrusted
// callers that wants to decide alone sets OTEL_TRACES_SAMPLER=traceidratio
// (or always_on), or OTEL_PROPAGATORS=none.
func Propagator(lookup func(string) (string, bool)) propagation.TextMapPropagator {
	v, ok := lookup("OTEL_PROPAGATORS")
	if ok && strings.TrimSpace(v) != "" {
		found := false
		for _, p := range strings.Split(v, ",") {
			if strings.TrimSpace(p) == "tracecontext" {
				found = true
			}
		}
		if !found {
			return nil
		}
	}
	return propagation.TraceContext{}
}
