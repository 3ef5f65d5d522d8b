package telemetry

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/hsrcpay/apikeys/internal/testredis"
)

func TestTraceDecide(t *testing.T) {
	for _, tc := range []struct {
		env     map[string]string
		on, bad bool
	}{
		{env: nil},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, on: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}},
		{env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkin"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"}, bad: true},
		{env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318"}, on: true},
	} {
		on, why, err := Decide(func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok })
		if (err != nil) != tc.bad || on != tc.on {
			t.Errorf("%v: on %v (%s), err %v; want on %v, error %v", tc.env, on, why, err, tc.on, tc.bad)
		}
	}
	off, err := Start(context.Background(), func(string) (string, bool) { return "", false }, "v", nil)
	if err != nil || off.Enabled || off.Provider == nil || off.Shutdown(context.Background()) != nil {
		t.Fatalf("off: %+v, %v", off, err)
	}
	if Propagator(func(string) (string, bool) { return "none", true }) != nil || Propagator(func(string) (string, bool) { return "", false }) == nil {
		t.Error("OTEL_PROPAGATORS=none must read no traceparent; unset must read it")
	}
}

// TestTraceRedisHook: a Redis command inside a span gets a child span named
// by the command, with neither its key nor its value; outside a span none.
func TestTraceRedisHook(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	rdb := redis.NewClient(testredis.Options(t))
	t.Cleanup(func() { _ = rdb.Close() }) // only frees connections
	rdb.AddHook(RedisHook(tp))
	ctx := context.Background()
	const key, value = "hsrcpay:test:trace-hook:acct_secretive", "sk_test_valuenevertraced"
	if err := rdb.Set(ctx, key, value, time.Second).Err(); err != nil { // no parent: no span
		t.Fatal(err)
	}
	pctx, parent := tp.Tracer("test").Start(ctx, "request")
	if err := rdb.Get(pctx, key).Err(); err != nil {
		t.Fatal(err)
	}
	if _, err := rdb.Pipelined(pctx, func(p redis.Pipeliner) error { p.Del(pctx, key); p.Exists(pctx, key); return nil }); err != nil {
		t.Fatal(err)
	}
	parent.End()
	var names []string
	for _, s := range rec.Ended() {
		names = append(names, s.Name())
		// Children, or (a connection's set-up: HELLO) grandchildren.
		if s.SpanContext().TraceID() != parent.SpanContext().TraceID() {
			t.Errorf("%s is not in the request's trace", s.Name())
		}
		for _, kv := range s.Attributes() {
			if v := kv.Value.String(); strings.Contains(v, "secretive") || strings.Contains(v, "valuenevertraced") {
				t.Errorf("span %s attribute %s carries a key or value: %s", s.Name(), kv.Key, v)
			}
		}
	}
	for _, want := range []string{"redis get", "redis pipeline", "request"} {
		if !slices.Contains(names, want) {
			t.Errorf("no span %q among %q", want, names)
		}
	}
	if slices.Contains(names, "redis set") {
		t.Errorf("a command outside any span made one: %q", names)
	}
}
