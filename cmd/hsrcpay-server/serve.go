package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/logwriter"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/server"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
)

// newServeCmd is "serve", the default command (the root runs it too).
func newServeCmd(stdout, stderr io.Writer) *cobra.Command {
	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the API (the default command)",
		Long: `Runs the API until SIGINT or SIGTERM. Every setting is an HSRCPAY_* environment
variable and also a flag (HSRCPAY_RATE_LIMIT_LIVE is --rate-limit-live); a flag
wins over the environment. Bad values stop the server before anything starts,
naming the variable (exit 2). Both listeners are bound first: only then is the
demo account (--demo-account) provisioned and its keys printed, so a server
that cannot bind its port changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return exit(serveRun(c, stdout, stderr)) },
	}
	registerServeFlags(serve)
	return serve
}

func serveRun(c *cobra.Command, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(serveLookup(c.Flags(), os.LookupEnv), stderr)
	if code != 0 {
		return code
	}
	// The log lines leave the request path (internal/logwriter); every one
	// is written before serveRun prints anything else or returns (Close,
	// deferred too, for a panic), so none is lost on exit.
	lines := logwriter.New(stderr)
	defer func() { _ = lines.Close() }()
	log := slog.New(slog.NewJSONHandler(lines, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, cfg, log, stdout)
	_ = lines.Close() // a failed log write has nowhere to be reported
	if err != nil {
		eprintf(stderr, "hsrcpay-server: %v\n", err)
		return 1
	}
	return 0
}

// idempotencyKey loads the key that seals the answers kept for
// Idempotency-Key replays: HSRCPAY_IDEMPOTENCY_KEY_FILE (which must exist:
// replicas share it, so none may invent its own), or, with the embedded
// SQLite store and no file named, DIR.idempotency.key beside sqlite:DIR
// (./data.idempotency.key by default), created with mode 0600 on first start.
// It is kept apart from the database on purpose: a copy of the database
// alone does not reveal the secrets in the kept answers. nil (PostgreSQL
// without a file): server.New says what that means.
func idempotencyKey(cfg config.Config, log *slog.Logger) ([]byte, error) {
	path, create := cfg.IdempotencyKeyFile, false
	if path == "" {
		kind, loc, err := config.ParseDatabaseURL(cfg.DatabaseURL)
		if err != nil || kind != config.SQLite {
			return nil, err
		}
		path, create = filepath.Clean(loc)+".idempotency.key", true
	}
	key, created, err := server.LoadIdempotencyKey(path, create)
	if err != nil {
		return nil, fmt.Errorf("HSRCPAY_IDEMPOTENCY_KEY_FILE: %w", err)
	}
	if created {
		log.Info("created the idempotency key file (keep it with the data directory's backups, apart from them)", "path", path)
	}
	return key, nil
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	// GitHub's secret scanning keys first, before binding or opening
	// anything: a server that would refuse every leak report should not
	// start. A URL is re-read while serving (leakKeys.Run below).
	var leakKeys *secretscan.Keys
	if cfg.SecretScanningKeysFile != "" || cfg.SecretScanningKeysURL != "" {
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		var err error
		leakKeys, err = secretscan.Load(lctx, secretscan.Config{File: cfg.SecretScanningKeysFile, URL: cfg.SecretScanningKeysURL, Logger: log})
		cancel()
		if err != nil {
			return fmt.Errorf("HSRCPAY_SECRET_SCANNING_KEYS_*: %w", err)
		}
	}
	// The TLS pair too: one that does not load stops the start (tls.go).
	stls, err := loadTLS(cfg, log)
	if err != nil {
		return err
	}
	// Bind both listeners before anything else happens: a port in use is an
	// error at start, naming its variable, before the store is opened or the
	// demo account's keys are rotated (a second `make run` must not take the
	// first one's keys away). Connections wait in the backlog until Serve.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("HSRCPAY_ADDR: %w", err)
	}
	// Closes it if Serve never ran; after Serve, Shutdown or Close has.
	defer func() { _ = ln.Close() }()
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = lc.Listen(ctx, "tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("HSRCPAY_METRICS_ADDR: %w", err)
		}
		defer func() { _ = mln.Close() }()
	}
	tracing, stopTracing, err := startTracing(ctx, log)
	if err != nil {
		return err
	}
	defer stopTracing()
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store failed", "err", err)
		}
	}()
	jwtv, err := auth.NewJWTVerifier(ctx, auth.JWTConfig{
		JWKSURL: cfg.JWKSURL, PublicKeyFile: cfg.JWTPublicKeyFile, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		MaxLifetime: cfg.JWTMaxLifetime,
	})
	if err != nil {
		return err
	}
	defer jwtv.Close()
	m := metrics.New()
	var limiter ratelimit.Limiter = ratelimit.NewMemory()
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		var shared *ratelimit.Redis
		shared, rdb, err = ratelimit.NewRedis(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("HSRCPAY_REDIS_URL: %w", err)
		}
		defer func() { _ = rdb.Close() }() // only frees its connection pool
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rdb.Ping(pctx).Err(); err != nil {
			log.Warn("Redis unreachable at start; rate limits are per replica until it answers", "err", err)
		}
		cancel()
		limiter = &ratelimit.Fallback{Primary: shared, Secondary: limiter, OnFallback: func(err error) {
			m.LimiterErrors.Inc()
			log.Warn("Redis rate limiter failed; using this replica's in-memory budget", "err", err)
		}}
	}
	trusted, perr := config.ParseTrustedProxies(cfg.TrustedProxies)
	if perr != nil { // config.Load refused it already
		return fmt.Errorf("HSRCPAY_TRUSTED_PROXIES: %w", perr)
	}
	opts := server.Options{
		TrustedProxies:     trusted,
		Store:              st,
		JWT:                jwtv,
		Limiter:            limiter,
		Metrics:            m,
		RateLimits:         map[apikey.Mode]int{apikey.Live: cfg.RateLimitLive, apikey.Sandbox: cfg.RateLimitSandbox},
		ResponseValidation: cfg.ResponseValidation,
		MaxActiveKeys:      cfg.MaxActiveKeys,
		Logger:             log,
		AccountLimits:      map[apikey.Mode]int{apikey.Live: cfg.AccountRateLimitLive, apikey.Sandbox: cfg.AccountRateLimitSandbox},
		AuthFailureLimit:   cfg.AuthFailureLimit,
		CredentialCacheTTL: cfg.CredentialCacheTTL,
		StoreTimeout:       cfg.StoreTimeout,

		CredentialCacheKeys:   cfg.CredentialCacheKeys,
		CredentialCacheMemory: cfg.CredentialCacheMemory,
		Deployment:            cfg.Deployment,

		SecretScanning:      leakKeys,
		SecretScanningLimit: cfg.SecretScanningLimit,
	}
	if rdb != nil {
		// The same client as the limiter's: its short timeouts suit a
		// publish that holds a write's response; the subscription takes a
		// connection of its own.
		opts.Redis = rdb
	}
	traceServer(tracing, &opts, rdb)
	if opts.IdempotencyKey, err = idempotencyKey(cfg, log); err != nil {
		return err
	}
	srv, err := server.New(opts) //nolint:contextcheck // the server's tracing and background work live until Close, not for this call
	if err != nil {
		return err
	}
	var conns connTracker
	hs := &http.Server{
		Handler:           srv,
		ConnState:         conns.note,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	stls.apply(hs)
	type listener struct {
		name string // its variable
		hs   *http.Server
		ln   net.Listener
	}
	apiLn := &drainListener{Listener: ln}
	listeners := []listener{{"HSRCPAY_ADDR", hs, apiLn}}
	// Metrics on a listener of their own (rule 11): they show every tenant's
	// traffic and the failure reasons the API folds into one code.
	if mln != nil {
		listeners = append(listeners, listener{"HSRCPAY_METRICS_ADDR", &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
		}, mln})
	}
	if cfg.DemoAccount != "" {
		if err := demo(ctx, srv.Service, cfg, stls.url(apiURL(ln.Addr())), stdout); err != nil {
			return fmt.Errorf("demo account: %w", err)
		}
	}
	// Usage keeps being recorded while the requests drain after ctx ends;
	// stopUsage ends it (with a last flush) once they have.
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { srv.Usage.Run(usageCtx, cfg.UsageFlushInterval); close(usageDone) }()
	// The credential cache's subscription lives as long (requests still
	// draining keep using the cache); stopped, the cache is bypassed.
	go srv.RunCredentialCache(usageCtx)
	if leakKeys != nil {
		go leakKeys.Run(usageCtx)
	}
	go stls.run(usageCtx)

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			err := serveOn(l.hs, l.ln, log)
			if dl, ok := l.ln.(*drainListener); ok && dl.closed.Load() {
				return // the drain closed it
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	metricsAddr := "off"
	if len(listeners) > 1 {
		metricsAddr = listeners[1].ln.Addr().String()
	}
	log.Info("listening", startSummary(cfg, ln.Addr().String(), metricsAddr, stls)...)
	select {
	case err := <-errc:
		// One listener failed: stop the other too.
		for _, l := range listeners {
			_ = l.hs.Close() // the failed listener's error is the one to return
		}
		stopUsage()
		<-usageDone
		return err
	case <-ctx.Done():
	}
	// http.Server.Shutdown closes the listener and every idle keep-alive
	// connection at once, and drops any request it reads after it began: a
	// request a client sent as that happened is reset, never answered (21
	// of them at 256 connections, issue 18). So first drain: keep serving,
	// not ready (load balancers take the replica out), each response
	// closing its connection (clients stop reusing them), for
	// HSRCPAY_SHUTDOWN_DRAIN; then close the listener and let the requests
	// under way be answered (each closes its connection); only then
	// Shutdown, which finds only connections idle for the whole drain.
	// (The backlog the closing listener resets holds connections made
	// after the signal, by clients that ignored /readyz.)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownDrain+cfg.ShutdownTimeout)
	defer cancel()
	if cfg.ShutdownDrain > 0 {
		log.Info("draining: not ready, every response closes its connection", "drain", cfg.ShutdownDrain.String())
		srv.Drain()
		select {
		case err := <-errc:
			log.Error("listener failed while draining", "err", err)
		case <-time.After(cfg.ShutdownDrain):
		}
		_ = apiLn.Close() // Serve returns; its error is the drain's doing
		conns.quiet(sctx)
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	// The API drains its in-flight requests; metrics stay scrapeable meanwhile
	// and stop with it.
	err = hs.Shutdown(sctx)
	for _, l := range listeners[1:] {
		if merr := l.hs.Shutdown(sctx); err == nil {
			err = merr
		}
	}
	// The last requests' key changes leave for the other replicas before
	// the publisher stops (bounded: a Redis that does not answer costs the
	// exit at most this; the other replicas' TTL bounds what they keep).
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = srv.FlushCredentialAnnouncements(actx) // what is not sent was counted and logged
	acancel()
	stopUsage()
	<-usageDone
	return err
}

func mustKind(u string) string {
	k, _, _ := config.ParseDatabaseURL(u)
	return k
}

// apiURL is the base URL a client on this machine reaches the listener at
// (the bound port, so a port chosen by the system is right too).
func apiURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + server.BasePath
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + server.BasePath
}

// demo makes sure the demo account exists in the sandbox and prints keys a
// newcomer can use with curl. On later starts the sandbox managed keys are
// rotated, since secrets are not kept and cannot be shown again.
func demo(ctx context.Context, svc *apikeys.Service, cfg config.Config, url string, w io.Writer) error {
	modes := []apikey.Mode{apikey.Sandbox}
	issued, err := svc.Bootstrap(ctx, cfg.DemoAccount, modes)
	if errors.Is(err, apikeys.ErrAccountExists) {
		issued, err = svc.RotateManaged(ctx, cfg.DemoAccount, apikey.Sandbox)
	}
	if err != nil {
		return err
	}
	var secret, secretID, publishable string
	for _, is := range issued {
		if is.Key.Type == apikey.TypeSecret {
			secret, secretID = is.Secret, is.Key.ID
		} else {
			publishable = is.Secret
		}
	}
	_, err = fmt.Fprintf(w, `
Sandbox demo account %q is ready. Its managed keys (shown once; rotated at each start):

export HSRCPAY_API_URL=%s
export HSRCPAY_API_KEY=%s
export HSRCPAY_KEY_ID=%s
export HSRCPAY_PUBLISHABLE_KEY=%s
export HSRCPAY_ACCOUNT=%s

`, cfg.DemoAccount, url, secret, secretID, publishable, cfg.DemoAccount)
	return err
}
