package main

import (
	"context"
	"log/slog"
	"os"
	"runtime/debug"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hsrcpay/apikeys/internal/telemetry"
	"github.com/hsrcpay/apikeys/server"
)

// startTracing sets OpenTelemetry tracing up from the OTEL_* variables
// (internal/telemetry says when it is on) and logs whether it is. The
// returned stop sends the spans still buffered, bounded, at exit.
func startTracing(ctx context.Context, log *slog.Logger) (*telemetry.Tracing, func(), error) {
	version := "(devel)"
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		version = bi.Main.Version
	}
	tr, err := telemetry.Start(ctx, os.LookupEnv, version, log)
	if err != nil {
		return nil, nil, err
	}
	log.Info("tracing", "enabled", tr.Enabled, "why", tr.Why)
	return tr, func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := tr.Shutdown(sctx); err != nil {
			log.Warn("tracing: spans still buffered at exit were not sent", "err", err)
		}
	}, nil
}

// traceServer hands the tracer to the server and to the Redis client (nil:
// none); nothing when tracing is off, so the request path is unchanged.
func traceServer(tr *telemetry.Tracing, opts *server.Options, rdb *redis.Client) {
	if !tr.Enabled {
		return
	}
	opts.Tracer, opts.Propagator = tr.Provider, tr.Propagator
	if rdb != nil {
		rdb.AddHook(telemetry.RedisHook(tr.Provider))
	}
}
