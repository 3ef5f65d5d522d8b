// Package server assembles the HTTP service: Echo, the generated strict
// handler, and the middlewares that tie every request to openapi.yaml.
//
// A request to /v1 passes, in order: Cache-Control: no-store → request id →
// access log → recover → body limit → route lookup in the spec → response
// validation of every response (buffers; only when every response is
// checked) → the middleware stack of the operation's authentication as the
// spec declares it (stacks.go). The bearer stack: authentication (a client
// address over its failed-authentication budget is refused before the
// credential lookup; a failure spends that budget; API keys are looked up
// through the credential cache, credcache.go) → rate limit (the sender's
// budgets, budgetsOf: a secret key's or JWT's own, and its account's for
// API keys; a publishable key, public by design, spends its client
// address's failed-authentication budget instead) → the operation's
// declared permission → response validation of a sample (production: see
// Options.ResponseValidation) → request validation → idempotency → the
// generated strict handler → handlers.go. The budgets come before the
// permission check so that a refused request (403) spends them too. The leak
// report's stack: GitHub's signature → its address's budget → response
// validation of a sample → request validation.
//
// Metrics are not served here: MetricsHandler is for a listener of its own
// (HSRCPAY_METRICS_ADDR), out of the API's reach.
package server

import (
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/redact"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store"
)

// maxBodyBytes bounds every request body (64 KiB, as the spec says; note
// that Echo reads "64K" as 64 000).
const maxBodyBytes = 64 << 10

// Options are the server's collaborators and switches.
type Options struct {
	Store store.Store
	JWT   *auth.JWTVerifier // nil: JWTs are rejected
	// Limiter defaults to an in-memory limiter.
	Limiter ratelimit.Limiter
	// RateLimits are requests per second per credential, by mode.
	RateLimits map[apikey.Mode]int
	// AccountLimits are requests per second per account, by mode, spent by
	// every request an API key of the account authenticates (default 1000
	// live, 100 sandbox). JWTs spend only their subject's budget.
	AccountLimits map[apikey.Mode]int
	// AuthFailureLimit is failed authentications per second per client
	// address (burst: the same); over it the address gets 429 (42901).
	// Default 10.
	AuthFailureLimit int
	// ResponseValidation is the share of responses checked against the spec
	// (a violation becomes a logged 500). 1 checks every response, the
	// rejections at authentication, rate limits and permission included:
	// tests, CI and development. 0 checks none. In between, that random
	// share of the requests that passed those checks is buffered and checked
	// (the rest pay nothing); the rejections are rendered by renderError,
	// whose envelope TestErrorEnvelopesMatchSpec holds to the spec.
	ResponseValidation float64
	// TrustedProxies are the proxies (addresses, CIDRs) allowed to name the
	// client in X-Forwarded-For (clientIPExtractor). None: the client address
	// is the peer's own, whatever the request says.
	TrustedProxies []netip.Prefix
	// Logger receives JSON-ready records; the server wraps its handler with
	// redact.Handler, so no token-shaped string reaches it.
	Logger *slog.Logger
	Now    func() time.Time
	// Metrics defaults to a fresh registry, served by MetricsHandler (not on
	// the API's routes).
	Metrics *metrics.Metrics
	// MaxActiveKeys caps each account's active keys per mode (default apikeys.DefaultMaxActiveKeys).
	MaxActiveKeys int
	// CredentialCacheTTL turns the credential cache on (0: off, every
	// request reads its key from the store): how long an API key's lookup
	// may be reused at most. Each key change drops the key at once here and,
	// through Redis, on every replica (see RunCredentialCache); the TTL bounds
	// what an announcement that never arrives can keep.
	CredentialCacheTTL time.Duration
	// CredentialCacheKeys and CredentialCacheMemory bound the credential
	// cache: at most so many keys, taking at most so many bytes as estimated
	// per entry (0: credcache.DefaultSize, credcache.DefaultMaxBytes).
	CredentialCacheKeys   int
	CredentialCacheMemory int64
	// StoreTimeout bounds every store call on top of the request's context
	// (0: store.DefaultTimeout; negative: none): a frozen store answers 503
	// after it instead of holding the request (store.WithTimeout).
	StoreTimeout time.Duration
	// Redis carries key changes between replicas (nil: none, and with a
	// cache other replicas' changes reach this one only within the TTL). The
	// cache serves only while RunCredentialCache holds the subscription up.
	Redis redis.UniversalClient
	// RedisPublishTimeout bounds one round trip of key-change announcements
	// (0: 500 ms). No request waits for it: announcements are sent in the
	// background (see credentials.changed).
	RedisPublishTimeout time.Duration
	// Tracer makes the request spans and, through the store, the spans of
	// its units of work and reads (nil: no tracing, nothing is paid);
	// Propagator reads an incoming traceparent (nil: none). See
	// internal/telemetry.
	Tracer     trace.TracerProvider
	Propagator propagation.TextMapPropagator
	// Deployment names the replicas that share key-change announcements on
	// Redis (credcache.ChannelFor; "" is the default deployment).
	Deployment string
	// IdempotencyKey (32 bytes) seals the answers kept for requests with an
	// Idempotency-Key (AES-256-GCM), so that they can be replayed, secret
	// included. nil: such requests still run at most once, but a completed
	// one is answered 409 (40904, replayable false) instead of replayed; New
	// logs it. Every replica sharing a store needs the same key.
	IdempotencyKey []byte
	// SecretScanning holds GitHub's public keys for the leak report
	// (POST /v1/secret-scanning/github); nil turns the feature off (404,
	// 40403). Run its refresh with SecretScanning.Run.
	SecretScanning *secretscan.Keys
	// SecretScanningLimit is leak reports per second per client address
	// (burst: the same). Default 10.
	SecretScanningLimit int
}

// Server is the HTTP service.
type Server struct {
	echo    *echo.Echo
	spec    *Spec
	auth    *auth.Authenticator
	limiter ratelimit.Limiter
	// memLimiter is limiter when it is the in-memory one (exactly that
	// type: a wrapper, such as the Redis fallback, may use its context),
	// which never reads its context (limiterContext) and is asked for a
	// budget without its name being made (spendJoined); nil otherwise.
	memLimiter *ratelimit.Memory
	limits     map[apikey.Mode]int
	log        *slog.Logger
	store      store.Store
	writes     *writeWatch // readiness: does the store accept writes
	metrics    *metrics.Metrics
	// draining: this replica is leaving (Drain); it serves on, not ready.
	draining atomic.Bool
	// Usage buffers last_used_* updates; run it with Usage.Run.
	Usage *auth.UsageTracker
	// Service is the business layer, shared with the bootstrap command.
	Service *apikeys.Service
	// creds is the credential cache and its invalidations.
	creds *credentials
	// idem keeps the answers of requests with an Idempotency-Key (idempotency.go).
	idem *idempotency

	// accountLimits budget each account's keys together, by mode.
	accountLimits map[apikey.Mode]int
	// authFailureLimit budgets failed authentications per client address;
	// blocked remembers addresses over it, to refuse them before any lookup.
	authFailureLimit int
	blocked          *ratelimit.Blocklist

	// responsesValid and responsesInvalid count the responses checked
	// against the spec (bound once: a request pays an atomic add).
	responsesValid, responsesInvalid prometheus.Counter
	requestMetrics                   *requestMetrics

	// leakKeys verify leak reports (nil: off); leakLimit budgets them per address.
	leakKeys  *secretscan.Keys
	leakLimit int
	// sample checks a share of the responses (nil: none, or every response
	// is checked before the stacks); the stacks place it (stacks.go).
	sample echo.MiddlewareFunc
	// stacks are the middleware stacks, composed once (stacks.go).
	stacks map[Authentication]echo.HandlerFunc
}

// New builds the server from the embedded spec.
func New(o Options) (*Server, error) {
	if o.Store == nil {
		return nil, errors.New("server: no store")
	}
	spec, err := LoadSpec()
	if err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	// Every line the server logs passes the one sanitizer (rule 8): the
	// access log's path, error messages (a response that broke the spec
	// quotes its body, secret included), panic values, whatever a client
	// managed to put in a method or an address.
	o.Logger = slog.New(redact.Handler(o.Logger.Handler()))
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Limiter == nil {
		o.Limiter = ratelimit.NewMemory()
	}
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	if o.RateLimits == nil {
		o.RateLimits = map[apikey.Mode]int{apikey.Live: 100, apikey.Sandbox: 25}
	}
	if o.AccountLimits == nil {
		o.AccountLimits = map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 100}
	}
	if o.AuthFailureLimit <= 0 {
		o.AuthFailureLimit = 10
	}
	if o.StoreTimeout == 0 {
		o.StoreTimeout = store.DefaultTimeout
	}
	// The store instance names this server's idempotency claims (their
	// holder): logged, so that a claim in the database can be traced to
	// the process that made it.
	if in, ok := o.Store.(store.Instanced); ok {
		o.Logger.Info("store instance", "instance", in.Instance(),
			"claim_lease", IdempotencyLease.String(), "claim_renew_every", IdempotencyRenewEvery.String())
	}
	// Everything below (authentication, the use cases, usage, readyz) sees
	// the bounded store, traced (a span per unit of work and read, under
	// the request's).
	system := store.SystemOf(o.Store)
	o.Metrics.WatchStore(o.Store) // its pool or writers, read at scrape
	o.Store = store.WithTracing(store.WithTimeout(o.Store, o.StoreTimeout), o.Tracer, system)
	// Every write's outcome feeds readiness (readiness.go).
	writes := &writeWatch{unavailable: o.Metrics.StoreUnavailable}
	o.Store = writes.wrap(o.Store)
	if o.SecretScanningLimit <= 0 {
		o.SecretScanningLimit = 10
	}
	idem, err := newIdempotency(o.IdempotencyKey, o.Store, o.Now, o.Logger)
	if err != nil {
		return nil, err
	}
	if o.IdempotencyKey == nil {
		o.Logger.Warn("idempotency: no key to seal stored answers (HSRCPAY_IDEMPOTENCY_KEY_FILE): " +
			"create and regenerate with an Idempotency-Key still run at most once, but a retry of a completed one " +
			"is answered 409 (40904, replayable false) instead of its original answer")
	}
	usage := auth.NewUsageTracker(o.Store, o.Logger)
	creds := newCredentials(o)
	authn := &auth.Authenticator{Store: o.Store, JWT: o.JWT, Usage: usage, Now: o.Now, Cache: creds.cache}
	// Verify judges keys through the authenticator's ResolveKey, as requests are judged.
	svc := apikeys.New(o.Store, spec.Catalog, apikeys.Options{Usage: usage, Now: o.Now, MaxActiveKeys: o.MaxActiveKeys, Changed: creds.changed, Keys: authn})
	s := &Server{
		spec:       spec,
		auth:       authn,
		limiter:    o.Limiter,
		memLimiter: memoryLimiter(o.Limiter),
		limits:     o.RateLimits,
		log:        o.Logger,
		store:      o.Store,
		writes:     writes,
		metrics:    o.Metrics,
		Usage:      usage,
		Service:    svc,
		creds:      creds,
		idem:       idem,

		accountLimits:    o.AccountLimits,
		authFailureLimit: o.AuthFailureLimit,
		blocked:          &ratelimit.Blocklist{},

		responsesValid:   o.Metrics.ResponsesValidated.WithLabelValues("valid"),
		responsesInvalid: o.Metrics.ResponsesValidated.WithLabelValues("invalid"),
		requestMetrics:   &requestMetrics{m: o.Metrics},

		leakKeys:  o.SecretScanning,
		leakLimit: o.SecretScanningLimit,
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.renderError
	e.IPExtractor = clientIPExtractor(o.TrustedProxies)
	// Every request's middlewares are composed once here, not by Echo on
	// each request (a closure per middleware per request): the global ones
	// into one chain that ends in the route Echo found, the /v1 ones around
	// each route's handler as it is registered (v1Routes). The trailing-slash
	// aliases run in ServeHTTP, before Echo's router.
	global := []echo.MiddlewareFunc{noStore, s.requestID}
	if tr := tracerOf(o); tr != nil {
		global = append(global, s.tracing(tr, o.Propagator))
	}
	global = append(global, s.accessLog, s.recover, middleware.BodyLimit("64KiB"))
	chain := composeOnce(routeHandler, global)
	// Echo calls this with the handler of the route it found, which
	// routeHandler reads back from the context: the same handler.
	e.Use(func(echo.HandlerFunc) echo.HandlerFunc { return chain })
	e.GET("/healthz", func(c echo.Context) error { return c.JSON(http.StatusOK, map[string]string{"status": "ok"}) })
	e.GET("/readyz", s.readyz)
	// No /metrics here (rule 11): it would show every tenant's traffic and
	// the failure reasons the API folds into one code. See MetricsHandler.
	s.registerDocs(e)

	mws := []echo.MiddlewareFunc{s.route}
	every := o.ResponseValidation >= 1
	if every {
		mws = append(mws, s.validateResponse)
	}
	if o.ResponseValidation > 0 && !every {
		s.sample = s.sampleResponses(o.ResponseValidation)
	}
	// Then the stack of the operation's authentication, as the spec declares it (stacks.go).
	s.stacks = s.buildStacks()
	mws = append(mws, s.selectStack)
	v1 := v1Routes{g: e.Group(BasePath), mws: mws}
	// What Group.Use registers so that unknown paths under /v1 pass the
	// group's middlewares (the route step answers them 404 or 405).
	v1.g.RouteNotFound("", composeOnce(echo.NotFoundHandler, mws))
	v1.g.RouteNotFound("/*", composeOnce(echo.NotFoundHandler, mws))
	api.RegisterHandlers(v1, api.NewStrictHandler(&handlers{svc: svc, spendKey: s.spendVerified, leaked: s.recordLeaks}, nil))
	s.echo = e
	return s, nil
}

// ServeHTTP makes the server an http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		// net/http closes the connection once this response is written, and
		// the client reads "close" first: it will not send another request
		// on a connection the server is about to close.
		w.Header().Set("Connection", "close")
	}
	slashAliases(r)
	s.echo.ServeHTTP(w, r)
}

// composeOnce wraps h in mws (the first outermost), once.
func composeOnce(h echo.HandlerFunc, mws []echo.MiddlewareFunc) echo.HandlerFunc {
	for _, mw := range slices.Backward(mws) {
		h = mw(h)
	}
	return h
}

// routeHandler ends the global chain with the handler of the route Echo
// found for the request (or its 404/405 handler).
func routeHandler(c echo.Context) error { return c.Handler()(c) }

// v1Routes registers the generated routes under /v1, each wrapped once in
// the group's middlewares (an Echo group's middlewares would be applied
// anew on every request).
type v1Routes struct {
	g   *echo.Group
	mws []echo.MiddlewareFunc
}

var _ api.EchoRouter = v1Routes{}

func (v v1Routes) add(method, path string, h echo.HandlerFunc, m []echo.MiddlewareFunc) *echo.Route {
	return v.g.Add(method, path, composeOnce(composeOnce(h, m), v.mws))
}

func (v v1Routes) CONNECT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodConnect, p, h, m)
}

func (v v1Routes) DELETE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodDelete, p, h, m)
}

func (v v1Routes) GET(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodGet, p, h, m)
}

func (v v1Routes) HEAD(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodHead, p, h, m)
}

func (v v1Routes) OPTIONS(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodOptions, p, h, m)
}

func (v v1Routes) PATCH(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPatch, p, h, m)
}

func (v v1Routes) POST(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPost, p, h, m)
}

func (v v1Routes) PUT(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodPut, p, h, m)
}

func (v v1Routes) TRACE(p string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) *echo.Route {
	return v.add(http.MethodTrace, p, h, m)
}

// Drain marks this replica as leaving (SIGTERM), for good: /readyz answers
// 503 so that load balancers take it out, and every response carries
// "Connection: close" so that clients stop reusing their connections to it.
// It keeps serving every request meanwhile. The caller waits a while (the
// drain period) before http.Server.Shutdown: by then the keep-alive
// connections that were idle have carried a request and been closed after
// its answer, so Shutdown, which closes idle connections at once, finds
// none that a client is about to send on (the request that would meet that
// close would be reset, never answered).
func (s *Server) Drain() { s.draining.Store(true) }

// MetricsHandler serves the Prometheus registry (GET /metrics; 404 for
// anything else). Mount it on a listener only operators reach
// (hsrcpay-server serves it on HSRCPAY_METRICS_ADDR), never beside the API.
func (s *Server) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.Handler())
	return mux
}

// slashAliases lets a client add or drop the trailing slash of a collection
// path: /v1/api-keys is the released /v1/api-keys/ (create, list) and
// /v1/audit-events/ is /v1/audit-events. It runs before Echo's router, on
// these exact paths only; anything else keeps its 404 (with a hint). Echo's
// own slash middlewares cannot do this: they would rewrite every route
// (/v1/api-keys/{id}/regenerate among them).
func slashAliases(r *http.Request) {
	u := r.URL
	if alias, ok := pathAliases[u.Path]; ok && u.RawPath == "" {
		u.Path = alias
	}
}

var pathAliases = map[string]string{
	BasePath + "/api-keys":      BasePath + "/api-keys/",
	BasePath + "/audit-events/": BasePath + "/audit-events",
}

// memoryLimiter is l when it is the in-memory limiter, else nil.
func memoryLimiter(l ratelimit.Limiter) *ratelimit.Memory {
	m, _ := l.(*ratelimit.Memory)
	return m
}
