package server

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/redact"
)

// noStore marks every response uncacheable (rule 8: a secret never leaves
// the response that carries it): create and regenerate answer with a
// plaintext secret, and no other answer is worth keeping in a cache. It runs
// first, before anything can fail, so every error renderer (404, 405, 413,
// 429, 500, a recovered panic, a response that failed validation) keeps it.
// It covers every path, not only /v1, so nothing can slip past a prefix
// check (/V1, //v1, /v1/../); only the docs handlers, whose content is
// public, replace it with their own caching.
func noStore(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header()[headerCacheControl] = cacheNoStoreValue
		return next(c)
	}
}

const (
	headerCacheControl = "Cache-Control"
	cacheNoStore       = "no-store"
)

// cacheNoStoreValue is the header's value, shared by every response instead
// of a slice made per response by Header.Set: nothing writes into a
// header's value slice (Set replaces it, Add appends past its capacity, so
// into a copy).
var cacheNoStoreValue = []string{cacheNoStore}[:1:1]

// The rate-limit headers' names as net/http writes them (Header.Set
// canonicalizes "RateLimit-Limit" to "Ratelimit-Limit" on every call).
var (
	headerRateLimitLimit     = http.CanonicalHeaderKey("RateLimit-Limit")
	headerRateLimitRemaining = http.CanonicalHeaderKey("RateLimit-Remaining")
	headerRateLimitReset     = http.CanonicalHeaderKey("RateLimit-Reset")
)

// requestID gives every request a fresh id (a client-sent one is not
// trusted: it would reach logs unchecked) and returns it as X-Request-Id.
// It makes the request's state (reqstate.go), which carries the id.
func (s *Server) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b [12]byte
		_, _ = rand.Read(b[:])
		req := c.Request()
		st := newRequestState(req.Context(), b)
		c.SetRequest(req.WithContext(st))
		c.Response().Header()[echo.HeaderXRequestID] = st.header[:] // already canonical: Set would only check it
		return next(c)
	}
}

// logPath is the route template when the request matched an operation
// (/v1/api-keys/{id}/regenerate), else the path through redact.String, which
// removes every token-shaped substring (a key or a JWT, whole segment or
// glued inside one, percent-encoded or not): a client may paste a secret
// where an id belongs.
//
// The query string is never logged, sanitized or not. Its only declared
// parameter (account_id) adds nothing the operation's own logs lack, and
// the rest is free-form client input where careless clients put
// credentials (?api_key=…): the sanitizer knows the shapes of our keys and
// of JWTs, not of a password or another service's token.
func (s *Server) logPath(c echo.Context, st *requestState) string {
	if st != nil && st.route != nil {
		return s.spec.routes.template(st.route)
	}
	return redact.String(c.Request().URL.Path)
}

func requestID(c echo.Context) string {
	if st := stateOf(c); st != nil {
		return st.id
	}
	return ""
}

// recover turns a panic into a 500 in the envelope.
func (s *Server) recover(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if r := recover(); r != nil {
				if r == http.ErrAbortHandler { //nolint:errorlint // a recover() value, compared as net/http compares it: only the sentinel itself aborts
					panic(r)
				}
				s.log.Error("panic", "request_id", requestID(c), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = panicError{r}
			}
		}()
		return next(c)
	}
}

// accessLog renders any error, then logs one line per request. It logs no
// header and no body: those may carry secrets.
func (s *Server) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		end := time.Now()
		elapsed := end.Sub(start)
		status := c.Response().Status
		st := stateOf(c)
		op := "none"
		if st != nil && st.route != nil {
			op = st.route.Operation.OperationID
		}
		if op != "none" || strings.HasPrefix(c.Request().URL.Path, BasePath+"/") {
			s.requestMetrics.observe(op, status, elapsed)
		}
		ctx := c.Request().Context()
		level := slog.LevelInfo
		if p := c.Request().URL.Path; p == "/healthz" || p == "/readyz" {
			// Probes come every few seconds from every load balancer and
			// orchestrator: at INFO they would drown the requests.
			level = slog.LevelDebug
		}
		if !s.log.Enabled(ctx, level) {
			return nil
		}
		// slog.Attr values, not key-value pairs: nothing is boxed.
		var buf [11]slog.Attr
		var id string
		if st != nil {
			id = st.id
		}
		attrs := append(buf[:0],
			slog.String("request_id", id),
			slog.String("method", c.Request().Method),
			slog.String("path", s.logPath(c, st)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			slog.String("client_ip", c.RealIP()),
		)
		if op != "none" {
			attrs = append(attrs, slog.String("operation", op))
		}
		if st != nil && st.authFailed {
			attrs = append(attrs, slog.String("auth_failure", st.authReason))
			if st.authDetail != "" {
				attrs = append(attrs, slog.String("auth_failure_detail", st.authDetail))
			}
		}
		// Who asked: the key's id and its account (public identifiers, never
		// the secret or its hash). A JWT has no key; its account is logged
		// when the token names exactly one.
		if p := auth.FromContext(ctx); p != nil {
			if p.KeyID != "" {
				attrs = append(attrs, slog.String("key_id", p.KeyID))
			}
			if len(p.Accounts) == 1 {
				attrs = append(attrs, slog.String("account_id", p.Accounts[0]))
			}
		}
		// The record is made here rather than by Logger.LogAttrs, which
		// would also walk the stack for the caller's PC (runtime.Callers):
		// the handlers log no source, and the stack walk was ~1% of verify.
		r := slog.NewRecord(end, level, "request", 0)
		r.AddAttrs(attrs...)
		_ = s.log.Handler().Handle(ctx, r) // as Logger does: a handler's error has nowhere to go
		return nil
	}
}

// route finds the operation in the spec; unknown paths and methods end here.
func (s *Server) route(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		route, params, err := s.findRoute(c)
		switch {
		case errors.Is(err, routers.ErrMethodNotAllowed):
			e := apierr.New(api.CodeMethodNotAllowed, "Method not allowed on this route").With("method", req.Method)
			e.Headers = map[string]string{"Allow": s.allowedMethods(req)}
			return e
		case err != nil:
			e := apierr.New(api.CodeRouteNotFound, "No such route")
			probe := req.Clone(req.Context())
			probe.URL.Path += "/"
			probe.URL.RawPath = ""
			if _, _, perr := s.spec.Router.FindRoute(probe); perr == nil {
				e = e.With("hint", "did you mean "+probe.URL.Path+" (with the trailing slash)?")
			}
			return e
		}
		st := stateOf(c)
		if st == nil {
			return apierr.Internal(errors.New("route reached without the request's state"))
		}
		st.route, st.params = route, params
		return next(c)
	}
}

// findRoute is the operation Echo matched, from the route table; the
// spec's router answers whatever the table cannot vouch for, unknown paths
// and methods among them (which Echo hands to the group's catch-all route,
// so they pass through here).
func (s *Server) findRoute(c echo.Context) (*routers.Route, map[string]string, error) {
	req := c.Request()
	if route, params, ok := s.spec.routes.lookup(req.Method, c.Path(), req.URL); ok {
		return route, params, nil
	}
	return s.spec.Operation(req)
}

// allowedMethods lists the methods the spec defines for the request's path.
func (s *Server) allowedMethods(req *http.Request) string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if _, _, err := s.spec.Router.FindRoute(probe); err == nil {
			out = append(out, m)
		}
	}
	return strings.Join(out, ", ")
}

func routeOf(c echo.Context) (*routers.Route, map[string]string) {
	if st := stateOf(c); st != nil {
		return st.route, st.params
	}
	return nil, nil
}

// authenticate resolves the bearer token into a principal on the request context.
//
// Failed authentications spend a budget of the client address (the missing
// token included; a store failure, which is ours, does not): over it the
// address gets 429 (42901), and while it stays over it, it is answered
// before the credential is even looked up, so forged keys cannot make the
// store work without bound.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		addr := clientAddress(c.RealIP())
		if e := s.refuseBlocked(addr); e != nil {
			return e
		}
		header := req.Header.Get(echo.HeaderAuthorization)
		if len(req.Header.Values(echo.HeaderAuthorization)) > 1 {
			// Which one a proxy or this server reads is ambiguous: refuse.
			header = "ambiguous"
		}
		p, err := s.auth.Authenticate(req.Context(), header, c.RealIP())
		if err != nil {
			var f *auth.Failure
			if errors.As(err, &f) {
				// A store failure is ours, unless the client hung up and cancelled
				// the lookup (that must not be a way around the budget).
				spend := f.Reason != auth.ReasonStoreFailure || req.Context().Err() != nil
				if limited := s.authFailed(c, addr, f.Reason, f.Detail, spend); limited != nil {
					return limited
				}
				// The one exception (issue 18): a previous secret whose grace
				// ended, retrying the rotation of its own key that replaced
				// it, goes on to fetch that rotation's stored answer. It has
				// been counted and charged as the failed authentication it
				// is; authorize answers it this 401 unless the answer is its.
				if f.Replaced != nil && ownRotation(c, f.Replaced) {
					p, err = f.Replaced, nil
				}
			}
			if err != nil {
				return err
			}
		}
		st := stateOf(c)
		if st == nil {
			return apierr.Internal(errors.New("authenticate reached without the request's state"))
		}
		p.RequestID, p.ClientIP = st.id, c.RealIP()
		st.principal = p // auth.FromContext finds it in the request's context (reqstate.go)
		return next(c)
	}
}

// refuseBlocked answers 42901 to an address over its failed-authentication
// budget, before its credential is even looked at (nil: not blocked). Every
// authentication step (bearer, leak-report signature) starts with it.
func (s *Server) refuseBlocked(addr string) *apierr.Error {
	wait, blocked := s.blocked.Blocked(addr)
	if !blocked {
		return nil
	}
	s.metrics.RateLimited.WithLabelValues(budgetClientAddress, "none").Inc()
	return tooManyAuthFailures(wait)
}

// authFailed records a failed authentication (reason and detail for the
// access log, the metric) and, when spend, spends it from addr's budget:
// the 42901 to answer instead of the step's own refusal when that budget is
// now over (nil otherwise).
func (s *Server) authFailed(c echo.Context, addr, reason, detail string, spend bool) *apierr.Error {
	if st := stateOf(c); st != nil {
		st.authFailed, st.authReason, st.authDetail = true, reason, detail
	}
	s.metrics.AuthFailures.WithLabelValues(reason).Inc()
	if !spend {
		return nil
	}
	return s.spendAuthFailure(c, addr)
}

// spendAuthFailure spends one failed authentication of addr's budget; over
// it, the address is remembered as blocked until the budget has room again
// and the request gets 42901 instead of 401.
func (s *Server) spendAuthFailure(c echo.Context, addr string) *apierr.Error {
	_, e := s.spendAddress(c, addr)
	return e
}

// spendAddress spends one request of addr's failed-authentication budget:
// a failed authentication, or a request budgetsOf charges to its address (a
// publishable key's). It returns the budget's state (nil when the limiter
// failed, logged) and, over it, the 42901 to answer; the address is then
// blocked until the budget has room again.
func (s *Server) spendAddress(c echo.Context, addr string) (*ratelimit.Result, *apierr.Error) {
	res, ok := s.spend(s.limiterContext(c.Request().Context()), requestID(c), "authfail:"+addr, s.authFailureLimit)
	if !ok {
		return nil, nil
	}
	if res.Allowed {
		return &res, nil
	}
	wait := res.RetryAfter
	if wait <= 0 {
		wait = time.Second / time.Duration(s.authFailureLimit)
	}
	s.blocked.Block(addr, time.Now().Add(wait))
	s.metrics.RateLimited.WithLabelValues(budgetClientAddress, "none").Inc()
	return &res, tooManyAuthFailures(wait)
}

func tooManyAuthFailures(wait time.Duration) *apierr.Error {
	return tooMany(api.CodeTooManyAuthFailures, "Too many failed authentications from this address", wait)
}

// tooMany is a 429 that says when to come back, in details and Retry-After
// (whole seconds, at least one).
func tooMany(code api.ErrorCode, msg string, wait time.Duration) *apierr.Error {
	retry := max(1, ceilSeconds(wait))
	e := apierr.New(code, msg).With("retry_after_seconds", retry)
	e.Headers = map[string]string{"Retry-After": strconv.Itoa(retry)}
	return e
}

// clientAddress is the key of an address's failed-authentication budget:
// the IPv4 address, or the /64 prefix of an IPv6 one (a single host usually
// holds a whole /64, so budgeting each address would budget nothing).
func clientAddress(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	if a.Is4() {
		// ParseAddr takes IPv4 only in its canonical form (no leading
		// zeros, four decimal parts): ip is what a.String() would make.
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		if pfx, err := a.WithZone("").Prefix(64); err == nil {
			return pfx.String()
		}
	}
	return a.String()
}

// The budgets a 429 can come from (the budget label of hsrcpay_rate_limited_total).
const (
	budgetCredential    = "credential"
	budgetAccount       = "account"
	budgetClientAddress = "client_address"
)

// authorize enforces the permission the operation declares in the spec
// (x-hsrcpay-permission), so authorization cannot drift from the contract,
// through the policy's coarse check; the use case asks the policy again,
// with the target, inside its transaction.
//
// A replaced secret is refused here (403 40304 in its grace, 401 40101
// once it ended) except for the one exception (issue 18, ownRotation): a
// regenerate of its own key with an Idempotency-Key goes on as replay only
// (replayOnly) and gets either its rotation's stored answer or this very
// refusal.
func (s *Server) authorize(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route, _ := routeOf(c)
		p := auth.FromContext(c.Request().Context())
		if e := policy.CheckOperation(p, s.spec.Permissions[route.Operation.OperationID]); e != nil {
			if ownRotation(c, p) {
				return s.replayOnly(c, next, e)
			}
			return e
		}
		return next(c)
	}
}

// requestBudgets are the budgets one request spends (budgetsOf).
type requestBudgets struct {
	// address, when set, is the client address whose failed-authentication
	// budget (authfail:<address>) the request spends instead of any
	// credential's; over it the address is blocked, as for forged keys.
	address string
	// mode:subject is the credential's budget; account, when set, its
	// account's (mode:account:<account>).
	mode    apikey.Mode
	subject string
	account string
	// own is the credential's own rate limit (a key's rate_limit), which
	// replaces its mode's default budget; nil: the default.
	own *apikey.RateLimit
	// spent: the request already spent its client address's
	// failed-authentication budget (authenticate), and spends nothing more.
	spent bool
}

// budgetsOf is the one place that decides which budgets a request spends,
// by who sent it (issue 17): a request spends the budget of its sender,
// never that of a credential it merely presented when that credential is
// public.
//
//   - A publishable key is public by design (it sits in web pages and apps)
//     and every bearer request made with it is refused (403 40303:
//     publishable keys manage nothing). Its presenter proves nothing about
//     who they are, so the request spends the client address's
//     failed-authentication budget, like a forged key, and neither the key's
//     own budget nor its account's: otherwise anyone who copied the key from
//     a page could exhaust them, so that the merchant's services verifying
//     that key got RATE_LIMITED and its secret keys 429. Its own budgets are
//     spent only when its owner verifies it (spendVerified).
//   - A secret key's or a JWT's holder is its owner (or has stolen it, which
//     is a leak, not a refusal's cost): the request spends the credential's
//     budget and, for an API key, its account's (all the account's keys
//     share it, so keys made by a key do not multiply its budget; JWTs
//     spend their subject's budget only, as this service cannot mint them).
//     A 403 with a secret key (a permission it lacks, a replaced secret)
//     spends them too.
//   - A replaced secret whose grace ended authenticates nothing: it is a
//     failed authentication, spent from the client address's budget in
//     authenticate (as today), and reaches here only to fetch its own
//     rotation's stored answer (issue 18). It spends nothing more: not its
//     key's budgets, which its holder no longer owns.
func budgetsOf(p *auth.Principal, addr string) requestBudgets {
	if p.GraceEnded {
		return requestBudgets{spent: true}
	}
	if p.Kind == keys.KindPublishable {
		return requestBudgets{address: addr}
	}
	b := requestBudgets{mode: p.Mode, subject: p.Subject, own: p.RateLimit}
	if p.KeyID != "" && len(p.Accounts) == 1 {
		b.account = p.Accounts[0]
	}
	return b
}

// rateLimit spends one request of the budgets budgetsOf names for the
// request, so that no request is free and none spends an owner's budget
// that the owner did not send. It runs before the permission check: a
// request refused with 403 has spent its budgets too (the sender's: the
// client address's for a publishable key, the credential's for a secret
// key or JWT). A request refused by its credential's budget does not spend
// the account's, so one runaway key cannot take more of its account's
// budget than its own. The RateLimit-* headers report the tighter of the
// budgets spent (the address's for a publishable key).
func (s *Server) rateLimit(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		p := auth.FromContext(c.Request().Context())
		b := budgetsOf(p, clientAddress(c.RealIP()))
		if b.spent {
			return next(c)
		}
		var shown *ratelimit.Result
		var refused *apierr.Error
		if b.address != "" {
			shown, refused = s.spendAddress(c, b.address)
		} else {
			res, budget, ok := s.spendBudgets(s.limiterContext(c.Request().Context()), requestID(c), b.mode, b.subject, b.account, b.own)
			if ok {
				shown = &res // does not leave this function: no allocation
			}
			if ok && !res.Allowed {
				s.metrics.RateLimited.WithLabelValues(budget, string(p.Mode)).Inc()
				refused = tooMany(api.CodeRateLimited, "Too many requests", res.RetryAfter)
			}
		}
		if shown == nil {
			return next(c) // the limiter's store is down: serve rather than fail every request
		}
		setRateLimitHeaders(c.Response().Header(), stateOf(c), shown.Limit, shown.Remaining, ceilSeconds(shown.ResetAfter))
		if refused != nil {
			return refused
		}
		return next(c)
	}
}

// setRateLimitHeaders sets the three RateLimit-* headers as Header.Set
// would, from one string and one slice rather than three of each: those
// of the request's state (st) the first time, so nothing is allocated
// (the strings are views of its bytes, which are then never written
// again), else new ones.
func setRateLimitHeaders(h http.Header, st *requestState, limit, remaining, reset int) {
	var buf [3 * 20]byte
	b := strconv.AppendInt(buf[:0], int64(limit), 10)
	n1 := len(b)
	b = strconv.AppendInt(b, int64(remaining), 10)
	n2 := len(b)
	b = strconv.AppendInt(b, int64(reset), 10)
	var all string
	var vals []string
	if st != nil && !st.rateUsed {
		st.rateUsed = true
		n := copy(st.rateBuf[:], b)
		all = unsafe.String(&st.rateBuf[0], n) //nolint:gosec // G103: rateBuf is written once, before this view, and never after
		vals = st.rateVals[:]
	} else {
		all = string(b)
		vals = make([]string, 3)
	}
	vals[0], vals[1], vals[2] = all[:n1], all[n1:n2], all[n2:]
	h[headerRateLimitLimit] = vals[0:1:1]
	h[headerRateLimitRemaining] = vals[1:2:2]
	h[headerRateLimitReset] = vals[2:3:3]
}

// spendBudgets spends one request of a credential's budget (mode:subject)
// and, for an API key (account set), of its account's (mode:account:<id>),
// unless the credential's own refused it. It returns the tighter of the two
// results and whose it is; false when the limiter failed (logged). rateLimit
// spends the caller's budgets with it, and verify those of the key it
// verifies, so that a key spends alike whether it calls or is verified.
// (Results by value: a pointer to one would be an allocation per budget.)
//
// own, a key's own rate limit (issue 22), replaces the mode's default for
// the credential's budget, under the same name (mode:subject): one budget
// per key, shared across replicas and degraded without Redis exactly as the
// default ones.
func (s *Server) spendBudgets(ctx context.Context, reqID string, mode apikey.Mode, subject, account string, own *apikey.RateLimit) (ratelimit.Result, string, bool) {
	budget := budgetCredential
	var shown ratelimit.Result
	var ok bool
	if own != nil {
		shown, ok = s.spendJoined(ctx, reqID, string(mode), ":", subject, ratelimit.Rate{N: own.Limit, Per: own.Window})
	} else {
		shown, ok = s.spendJoined(ctx, reqID, string(mode), ":", subject, ratelimit.PerSecond(s.limits[mode]))
	}
	if (!ok || shown.Allowed) && account != "" {
		if res, aok := s.spendJoined(ctx, reqID, string(mode), ":account:", account, ratelimit.PerSecond(s.accountLimits[mode])); aok && (!ok || tighter(res, shown)) {
			shown, budget, ok = res, budgetAccount, true
		}
	}
	return shown, budget, ok
}

// spend asks the limiter for one request of key's budget; false when the
// limiter failed (logged), which lets the request through. ctx should not
// end with the request (limiterContext).
func (s *Server) spend(ctx context.Context, reqID, key string, limit int) (ratelimit.Result, bool) {
	res, err := s.limiter.Allow(ctx, key, limit)
	if err != nil {
		s.log.Warn("rate limiter unavailable; budget not spent", "request_id", reqID, "err", err)
		return ratelimit.Result{}, false
	}
	return res, true
}

// spendJoined is spend for the budget a+b+c, of any rate (a key's own
// rate limit among them). The in-memory limiter is asked without the
// joined name being made (ratelimit.Memory.AllowRateJoined; it never
// fails); any other gets the name.
func (s *Server) spendJoined(ctx context.Context, reqID, a, b, c string, r ratelimit.Rate) (ratelimit.Result, bool) {
	if s.memLimiter != nil {
		return s.memLimiter.AllowRateJoined(a, b, c, r), true
	}
	res, err := s.limiter.AllowRate(ctx, a+b+c, r)
	if err != nil {
		s.log.Warn("rate limiter unavailable; budget not spent", "request_id", reqID, "err", err)
		return ratelimit.Result{}, false
	}
	return res, true
}

// limiterContext is the request's context without its cancellation: a
// client that hangs up still spends its budgets, and its cancelled request
// is not mistaken for a Redis failure (which would switch this replica to
// its own in-memory budgets for a while). Redis calls have short timeouts.
// The in-memory limiter never looks at its context (nothing of it can be
// cancelled), so it is given the request's as is: detaching it was an
// allocation per request, and one more per verify.
func (s *Server) limiterContext(ctx context.Context) context.Context {
	if s.memLimiter != nil {
		return ctx
	}
	return context.WithoutCancel(ctx)
}

// tighter reports whether a leaves less room than b: refused before
// allowed, then fewer requests remaining, then the longer wait to refill.
func tighter(a, b ratelimit.Result) bool {
	if a.Allowed != b.Allowed {
		return !a.Allowed
	}
	if a.Remaining != b.Remaining {
		return a.Remaining < b.Remaining
	}
	return a.ResetAfter > b.ResetAfter
}

func ceilSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// validateRequest checks parameters and body against the spec. The body is
// decoded once; the strict handler binds the validated value.
func (s *Server) validateRequest(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		route, params := routeOf(c)
		req := c.Request()
		// Echo's parse of the query, kept on the context: the generated
		// binder reads the same one, and kin-openapi is given it too. An
		// empty query is not parsed (nothing to check; kin-openapi parses
		// the same nothing itself if it needs to).
		var query url.Values
		if req.URL.RawQuery != "" {
			query = c.QueryParams()
			if fe := checkQuery(route.Operation, query); len(fe) > 0 {
				return apierr.Validation(fe)
			}
		}
		if ce := req.Header.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
			return apierr.New(api.CodeUnsupportedMediaType, "Content-Encoding is not supported; send the body uncompressed")
		}
		options := requestValidation
		// The parameters' fast path (paramcheck.go), as the body's below.
		pc := s.spec.params[route.Operation.OperationID]
		paramsOK := pc != nil && pc.ok(params)
		if route.Operation.RequestBody == nil && paramsOK {
			return next(c) // kin-openapi would check only the parameters
		}
		if route.Operation.RequestBody != nil && req.Body != nil {
			body, err := readBody(req.Body, req.ContentLength)
			if err != nil {
				if isBodyTooLarge(err) {
					return bodyTooLarge()
				}
				return apierr.New(api.CodeMalformedBody, "Could not read the request body")
			}
			if !utf8.Valid(body) {
				return apierr.New(api.CodeMalformedBody, "Request body is not valid UTF-8")
			}
			// kin-openapi decodes only the first JSON value; refuse anything after it.
			ct := req.Header.Get(echo.HeaderContentType)
			if isJSON(ct) && len(bytes.TrimSpace(body)) > 0 && !json.Valid(body) {
				return apierr.New(api.CodeMalformedBody, "Request body is not valid JSON")
			}
			// The fast path (bodycheck.go): a body it proves valid is not
			// walked again by kin-openapi, which is left the parameters, if
			// any; anything else gets kin-openapi's verdict, as before.
			fast := false
			if bc := s.spec.bodies[route.Operation.OperationID]; bc != nil && ct == echo.MIMEApplicationJSON {
				if v, ok := bc.check(body); ok {
					req.Body = newCheckedBody(body, v)
					req.ContentLength = int64(len(body)) // as kin-openapi leaves it
					if !hasParameters(route) || paramsOK {
						return next(c)
					}
					options, fast = parameterValidation, true
				}
			}
			if !fast {
				req.Body = io.NopCloser(bytes.NewReader(body))
			}
		}
		err := openapi3filter.ValidateRequest(req.Context(), &openapi3filter.RequestValidationInput{
			Request:     req,
			PathParams:  params,
			QueryParams: query,
			Route:       route,
			Options:     options,
		})
		if err != nil {
			return validationError(err)
		}
		return next(c)
	}
}

// isJSON reports whether a Content-Type names application/json (with or
// without parameters), without parsing the common exact spelling.
func isJSON(ct string) bool {
	if ct == echo.MIMEApplicationJSON {
		return true
	}
	mt, _, _ := mime.ParseMediaType(ct)
	return mt == echo.MIMEApplicationJSON
}

// hasParameters reports whether kin-openapi has parameters to check for the
// route (its own or its path's).
func hasParameters(r *routers.Route) bool {
	return len(r.Operation.Parameters) > 0 || r.PathItem != nil && len(r.PathItem.Parameters) > 0
}

// requestValidation are validateRequest's kin-openapi options (shared: kin
// only reads them; keep BenchmarkValidateRequest's in step).
var requestValidation = &openapi3filter.Options{
	MultiError:         true,
	KeepValidatedValue: true,
	// Defaults would replace an explicit null before it is checked;
	// the handlers treat absent values as the documented defaults.
	SkipSettingDefaults: true,
	// The authenticate middleware has already checked the token (the
	// route table's operations carry no security requirement at all).
	AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
}

// parameterValidation is requestValidation without the body, which
// bodyCheck has proven valid.
var parameterValidation = func() *openapi3filter.Options {
	o := *requestValidation
	o.ExcludeRequestBody = true
	return &o
}()

// readBody reads a request body whole, in one allocation when the declared
// length is right (io.ReadAll would start at 512 bytes and grow). The
// length only sizes the buffer: the body limit middleware bounds what is
// read.
func readBody(r io.Reader, declared int64) ([]byte, error) {
	size := 512
	if declared >= 0 && declared < maxBodyBytes {
		size = int(declared) + 1 // one more, to see EOF without growing
	}
	b := make([]byte, 0, size)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return b, nil
			}
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}

// checkQuery rejects query parameters the operation does not declare, and
// declared ones given more than once, which kin-openapi would let through.
func checkQuery(op *openapi3.Operation, q url.Values) []apierr.FieldError {
	var out []apierr.FieldError
	for name, vals := range q {
		p := op.Parameters.GetByInAndName(openapi3.ParameterInQuery, name)
		switch {
		case p == nil:
			out = append(out, apierr.FieldError{Location: "query", Field: name, Reason: "unknown query parameter"})
		case len(vals) > 1:
			out = append(out, apierr.FieldError{Location: "query", Field: name, Reason: "must be given once"})
		}
	}
	return out
}
