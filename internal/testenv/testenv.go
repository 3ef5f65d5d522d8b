// Package testenv starts a real server on a real store for tests and
// benchmarks: an httptest server running server.New on SQLite in a temp dir,
// a controllable clock, a JWT issuer, and bootstrapped accounts.
package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/server"
)

// Clock is a settable clock for the server (key expiry, timestamps).
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Advance moves the server's time forward.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// Managed are an account's managed keys in one mode, secrets included.
type Managed struct {
	SecretID, Secret           string
	PublishableID, Publishable string
}

// Env is a running server.
type Env struct {
	t       testing.TB
	URL     string // base URL including /v1
	Root    string // base URL without /v1
	Server  *server.Server
	HTTP    *httptest.Server
	Store   store.Store
	DataDir string // SQLite files, when the store is SQLite
	Clock   *Clock
	JWT     *JWTIssuer
	// IdempotencyKey is the server's (nil with Config.NoIdempotencyKey).
	IdempotencyKey []byte
}

// Config adjusts the environment.
type Config struct {
	RateLimits map[apikey.Mode]int
	// Store replaces the default SQLite store (e.g. PostgreSQL).
	Store  store.Store
	Logger *slog.Logger
	// NoResponseValidation turns response validation off (benchmarks compare both).
	NoResponseValidation bool
	// SampleResponses, between 0 and 1, checks that share of responses as
	// production does (server.Options.ResponseValidation) instead of every
	// one, which is what tests need.
	SampleResponses float64
	// Limiter replaces the in-memory rate limiter (e.g. Redis, shared by replicas).
	Limiter ratelimit.Limiter
	// MaxActiveKeys caps each account's active keys per mode (0: generous).
	MaxActiveKeys int
	// AccountLimits and AuthFailureLimit are the account and failed-
	// authentication budgets. Like RateLimits they default to generous
	// values, so only the tests about budgets meet them.
	AccountLimits    map[apikey.Mode]int
	AuthFailureLimit int
	// TrustedProxies (addresses, CIDRs, as HSRCPAY_TRUSTED_PROXIES spells
	// them) may name the client in X-Forwarded-For; {"127.0.0.0/8",
	// "::1/128"} lets a test on loopback speak from many addresses.
	TrustedProxies []string
	// Metrics replaces the server's fresh registry, so a test can read counters.
	Metrics *metrics.Metrics
	// CredentialCacheTTL is the credential cache's TTL; 0 means the
	// production default (config.Defaults), so every test runs with the
	// cache on, as production does. NoCredentialCache turns it off.
	CredentialCacheTTL time.Duration
	NoCredentialCache  bool
	// CredentialCacheKeys bounds the cache's keys (0: the server's default).
	CredentialCacheKeys int
	// StoreTimeout bounds each store call (0: the server's default).
	StoreTimeout time.Duration
	// RedisURL carries credential-cache invalidations between servers
	// (replicas); the server's subscription runs until the test ends.
	RedisURL string
	// RedisTimeout replaces the Redis client's dial, read and write
	// timeouts and the bound of a key-change announcement (0: the server
	// command's, 250 ms and 500 ms). A test that proves a
	// request does not wait for Redis makes it long, so that waiting would
	// show far above any scheduling noise.
	RedisTimeout time.Duration
	// IdempotencyKey seals the answers kept for Idempotency-Key replays
	// (default: 32 random bytes, kept in Env.IdempotencyKey; two replicas of
	// one store pass the same). NoIdempotencyKey runs without one.
	IdempotencyKey   []byte
	NoIdempotencyKey bool
	// SecretScanning turns the leak report on with these GitHub keys
	// (NewLeakSigner); SecretScanningLimit is its per-address budget
	// (0: generous, like the other budgets).
	SecretScanning      *secretscan.Keys
	SecretScanningLimit int

	// Tracer traces the server (nil: no tracing), e.g. an SDK provider
	// with a tracetest.SpanRecorder.
	Tracer trace.TracerProvider
	// Deployment names the replicas that share invalidations on Redis
	// (server.Options.Deployment; "" is the default deployment).
	Deployment string
}

// New starts a server; it stops with the test.
func New(t testing.TB, cfg Config) *Env {
	t.Helper()
	ctx := context.Background()
	e := &Env{t: t, Clock: &Clock{}}
	if cfg.Store != nil {
		e.Store = cfg.Store
	} else {
		e.DataDir = t.TempDir()
		st, err := sqlite.Open(ctx, e.DataDir, sqlite.Options{})
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		e.Store = st
	}
	t.Cleanup(func() { _ = e.Store.Close() }) // the checks are done: closing only frees files and connections
	e.JWT = NewJWTIssuer(t)
	verifier, err := auth.NewJWTVerifier(ctx, auth.JWTConfig{PublicKeyFile: e.JWT.PublicKeyFile, Issuer: e.JWT.Issuer, Audience: e.JWT.Audience})
	if err != nil {
		t.Fatalf("jwt verifier: %v", err)
	}
	if cfg.RateLimits == nil {
		cfg.RateLimits = map[apikey.Mode]int{apikey.Live: 100000, apikey.Sandbox: 100000}
	}
	if cfg.MaxActiveKeys == 0 {
		cfg.MaxActiveKeys = 1_000_000 // like the budgets: only the tests about the cap meet it
	}
	if cfg.AccountLimits == nil {
		cfg.AccountLimits = map[apikey.Mode]int{apikey.Live: 100000, apikey.Sandbox: 100000}
	}
	if cfg.AuthFailureLimit == 0 {
		cfg.AuthFailureLimit = 100000
	}
	validation := 1.0
	switch {
	case cfg.NoResponseValidation:
		validation = 0
	case cfg.SampleResponses > 0:
		validation = cfg.SampleResponses
	}
	if cfg.SecretScanningLimit == 0 {
		cfg.SecretScanningLimit = 100000
	}
	if cfg.CredentialCacheTTL == 0 {
		cfg.CredentialCacheTTL = config.Defaults().CredentialCacheTTL
	}
	if cfg.NoCredentialCache {
		cfg.CredentialCacheTTL = 0
	}
	switch {
	case cfg.NoIdempotencyKey:
		cfg.IdempotencyKey = nil
	case cfg.IdempotencyKey == nil:
		cfg.IdempotencyKey = make([]byte, server.IdempotencyKeySize)
		_, _ = rand.Read(cfg.IdempotencyKey)
	}
	e.IdempotencyKey = cfg.IdempotencyKey
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		// The client the server command builds: the same short timeouts.
		if _, rdb, err = ratelimit.NewRedis(cfg.RedisURL); err != nil {
			t.Fatalf("redis: %v", err)
		}
		if cfg.RedisTimeout > 0 {
			// The same client but for its timeouts (its Dialer is bound to
			// the options it was built with: build it anew).
			_ = rdb.Close() // unused: only frees its (empty) pool
			opt, err := redis.ParseURL(cfg.RedisURL)
			if err != nil {
				t.Fatalf("redis: %v", err)
			}
			opt.DialTimeout, opt.ReadTimeout, opt.WriteTimeout = cfg.RedisTimeout, cfg.RedisTimeout, cfg.RedisTimeout
			opt.MaxRetries, opt.DialerRetries = 0, 1
			rdb = redis.NewClient(opt)
		}
		t.Cleanup(func() { _ = rdb.Close() }) // only frees its connections
	}
	trusted, err := config.ParseTrustedProxies(strings.Join(cfg.TrustedProxies, ","))
	if err != nil {
		t.Fatalf("testenv: TrustedProxies: %v", err)
	}
	opts := server.Options{
		Store:              e.Store,
		JWT:                verifier,
		RateLimits:         cfg.RateLimits,
		Limiter:            cfg.Limiter,
		ResponseValidation: validation,
		Logger:             cfg.Logger,
		Now:                e.Clock.Now,
		MaxActiveKeys:      cfg.MaxActiveKeys,
		AccountLimits:      cfg.AccountLimits,
		AuthFailureLimit:   cfg.AuthFailureLimit,
		TrustedProxies:     trusted,
		Metrics:            cfg.Metrics,

		CredentialCacheTTL:  cfg.CredentialCacheTTL,
		CredentialCacheKeys: cfg.CredentialCacheKeys,
		IdempotencyKey:      cfg.IdempotencyKey,

		SecretScanning:      cfg.SecretScanning,
		SecretScanningLimit: cfg.SecretScanningLimit,
		StoreTimeout:        cfg.StoreTimeout,
		Tracer:              cfg.Tracer,
		Deployment:          cfg.Deployment,
	}
	if rdb != nil {
		opts.Redis = rdb // never a typed nil in the interface
		opts.RedisPublishTimeout = cfg.RedisTimeout
	}
	srv, err := server.New(opts)
	if err != nil {
		t.Fatalf("server: %v", err)
	}
	e.Server = srv
	subCtx, stopSub := context.WithCancel(ctx)
	subDone := make(chan struct{})
	go func() { srv.RunCredentialCache(subCtx); close(subDone) }()
	t.Cleanup(func() { stopSub(); <-subDone })
	e.HTTP = httptest.NewServer(srv)
	t.Cleanup(e.HTTP.Close)
	e.Root = e.HTTP.URL
	e.URL = e.HTTP.URL + server.BasePath
	return e
}

// NewLeakSigner is a GitHub of the test's own: a fresh ECDSA P-256 key
// published (as GitHub publishes its keys) in a file the returned Keys read.
func NewLeakSigner(t testing.TB, id string) (secretscan.Signer, *secretscan.Keys) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer := secretscan.Signer{ID: id, Key: priv}
	doc, err := secretscan.DocumentOf(signer)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "github-secret-scanning-keys.json")
	if err := os.WriteFile(file, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := secretscan.Load(context.Background(), secretscan.Config{File: file})
	if err != nil {
		t.Fatal(err)
	}
	return signer, keys
}

// Bootstrap creates account in both modes and returns its managed keys.
func (e *Env) Bootstrap(account string) map[apikey.Mode]Managed {
	e.t.Helper()
	issued, err := e.Server.Service.Bootstrap(context.Background(), account, apikey.Modes)
	if err != nil {
		e.t.Fatalf("bootstrap %s: %v", account, err)
	}
	out := map[apikey.Mode]Managed{}
	for _, is := range issued {
		m := out[is.Mode]
		if is.Key.Type == apikey.TypeSecret {
			m.SecretID, m.Secret = is.Key.ID, is.Secret
		} else {
			m.PublishableID, m.Publishable = is.Key.ID, is.Secret
		}
		out[is.Mode] = m
	}
	return out
}

// Client returns a client for token that does not retry, so tests see every status.
func (e *Env) Client(token string) *client.Client {
	e.t.Helper()
	c, err := client.New(e.URL, token, client.WithRetries(0, 0))
	if err != nil {
		e.t.Fatalf("client: %v", err)
	}
	return c
}

// WaitCredentialCacheServing waits until the server's credential cache
// serves lookups (with Redis: once its subscription is up), failing the
// test after 5 s.
func (e *Env) WaitCredentialCacheServing() {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !e.Server.CredentialCacheServing() {
		if time.Now().After(deadline) {
			e.t.Fatal("the credential cache did not start serving within 5s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// FlushUsage writes pending last_used_* updates now.
func (e *Env) FlushUsage() {
	if err := e.Server.Usage.Flush(context.Background()); err != nil {
		e.t.Fatalf("flush usage: %v", err)
	}
}

// SQLiteFiles lists the database files (WAL and shared memory included).
func (e *Env) SQLiteFiles() []string {
	var out []string
	for _, name := range sqlite.FileNames {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			p := filepath.Join(e.DataDir, name+suffix)
			if _, err := os.Stat(p); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}

// JWTIssuer signs tokens the server's verifier accepts.
type JWTIssuer struct {
	Key           *ecdsa.PrivateKey
	PublicKeyFile string
	Issuer        string
	Audience      string
}

// NewJWTIssuer makes a P-256 key and writes its public half as PEM.
func NewJWTIssuer(t testing.TB) *JWTIssuer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "jwt.pub.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &JWTIssuer{Key: k, PublicKeyFile: path, Issuer: "https://auth.test.hsrcpay.com/", Audience: "hsrcpay-api"}
}

// Claims builds valid claims for sub acting on accounts with perms, valid for an hour.
func (j *JWTIssuer) Claims(sub string, accounts, perms []string, mode string) *auth.Claims {
	now := time.Now()
	return &auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: sub, Issuer: j.Issuer, Audience: jwt.ClaimStrings{j.Audience},
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(time.Hour)),
		},
		Accounts: accounts, Permissions: perms, Mode: mode,
	}
}

// Sign signs claims with ES256.
func (j *JWTIssuer) Sign(t testing.TB, c jwt.Claims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(j.Key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
