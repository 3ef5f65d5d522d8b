package telemetry

import (
	"context"
	"errors"
	"net"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every tracer here.
const Scope = "github.com/hsrcpay/apikeys"

// RedisHook makes a client span for each Redis command, or pipeline, that
// runs inside a traced request (the rate limiter's budgets): named by the
// command ("redis evalsha"), with no argument, key or value (they hold
// account and key ids, and budgets' names). Work outside a request (the
// credential cache's announcements and subscription) makes no span: it
// would be a root span per write, traced apart from the request it serves.
// Add it with client.AddHook.
func RedisHook(tp trace.TracerProvider) redis.Hook {
	return redisHook{t: tp.Tracer(Scope)}
}

type redisHook struct{ t trace.Tracer }

var redisSystem = attribute.String("db.system.name", "redis")

func (redisHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h redisHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
			return next(ctx, cmd)
		}
		ctx, span := h.t.Start(ctx, "redis "+cmd.Name(), trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(redisSystem, attribute.String("db.operation.name", cmd.Name())))
		err := next(ctx, cmd)
		end(span, err)
		return err
	}
}

func (h redisHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
			return next(ctx, cmds)
		}
		ctx, span := h.t.Start(ctx, "redis pipeline", trace.WithSpanKind(trace.SpanKindClient),
			trace.WithAttributes(redisSystem, attribute.String("db.operation.name", "pipeline"),
				attribute.Int("db.operation.batch.size", len(cmds))))
		err := next(ctx, cmds)
		end(span, err)
		return err
	}
}

// end records a Redis error by its kind only (a timeout, or "error"): a
// server error's text may quote a key.
func end(span trace.Span, err error) {
	if err != nil && !errors.Is(err, redis.Nil) {
		kind := "error"
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			kind = "timeout"
		}
		span.SetAttributes(attribute.String("error.type", kind))
		span.SetStatus(codes.Error, kind)
	}
	span.End()
}
