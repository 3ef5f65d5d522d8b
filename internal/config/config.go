// Package config reads the server's settings from the environment and
// rejects bad values at start-up with a message naming the variable.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is every setting; the README's table lists each variable.
type Config struct {
	Addr               string        // HSRCPAY_ADDR
	MetricsAddr        string        // HSRCPAY_METRICS_ADDR; "" serves no metrics
	DatabaseURL        string        // HSRCPAY_DATABASE_URL
	Migrate            string        // HSRCPAY_MIGRATE: MigrateAuto or MigrateOff
	MigrationURL       string        // HSRCPAY_MIGRATION_DATABASE_URL; "" migrates with DatabaseURL
	SQLiteSynchronous  string        // HSRCPAY_SQLITE_SYNCHRONOUS
	JWKSURL            string        // HSRCPAY_JWT_JWKS_URL
	JWTPublicKeyFile   string        // HSRCPAY_JWT_PUBLIC_KEY_FILE
	JWTIssuer          string        // HSRCPAY_JWT_ISSUER
	JWTAudience        string        // HSRCPAY_JWT_AUDIENCE
	JWTMaxLifetime     time.Duration // HSRCPAY_JWT_MAX_LIFETIME
	RateLimitLive      int           // HSRCPAY_RATE_LIMIT_LIVE, requests/s per credential
	RateLimitSandbox   int           // HSRCPAY_RATE_LIMIT_TEST
	ResponseValidation float64       // HSRCPAY_VALIDATE_RESPONSES: share of responses checked, 0 to 1
	UsageFlushInterval time.Duration // HSRCPAY_USAGE_FLUSH_INTERVAL
	TrustedProxies     string        // HSRCPAY_TRUSTED_PROXIES, as given: ParseTrustedProxies reads it (Load has checked it)
	LogLevel           slog.Level    // HSRCPAY_LOG_LEVEL
	DemoAccount        string        // HSRCPAY_DEMO_ACCOUNT
	ShutdownTimeout    time.Duration // HSRCPAY_SHUTDOWN_TIMEOUT
	ShutdownDrain      time.Duration // HSRCPAY_SHUTDOWN_DRAIN: serving on, not ready, before Shutdown
	RedisURL           string        // HSRCPAY_REDIS_URL
	Deployment         string        // HSRCPAY_DEPLOYMENT: names the replicas that share invalidations on Redis
	IdempotencyKeyFile string        // HSRCPAY_IDEMPOTENCY_KEY_FILE; "" with SQLite: DIR.idempotency.key beside sqlite:DIR
	MaxActiveKeys      int           // HSRCPAY_MAX_ACTIVE_KEYS, per account and mode
	CredentialCacheTTL time.Duration // HSRCPAY_CREDENTIAL_CACHE_TTL; 0 turns the cache off
	// CredentialCacheKeys and CredentialCacheMemory bound the credential
	// cache's keys: HSRCPAY_CREDENTIAL_CACHE_KEYS, and
	// HSRCPAY_CREDENTIAL_CACHE_MEMORY in bytes (as estimated per entry).
	CredentialCacheKeys   int
	CredentialCacheMemory int64
	StoreTimeout          time.Duration // HSRCPAY_STORE_TIMEOUT: bounds every store call

	AccountRateLimitLive    int // HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE, requests/s per live account (all its keys)
	AccountRateLimitSandbox int // HSRCPAY_RATE_LIMIT_ACCOUNT_TEST
	AuthFailureLimit        int // HSRCPAY_AUTH_FAILURE_LIMIT, failed authentications/s per client address

	SecretScanningKeysFile string // HSRCPAY_SECRET_SCANNING_KEYS_FILE, GitHub's key document
	SecretScanningKeysURL  string // HSRCPAY_SECRET_SCANNING_KEYS_URL, or where GitHub publishes it
	SecretScanningLimit    int    // HSRCPAY_SECRET_SCANNING_RATE_LIMIT, leak reports/s per client address

	// TLS on HSRCPAY_ADDR: both files or neither ("": plain HTTP).
	TLSCertFile       string        // HSRCPAY_TLS_CERT_FILE, PEM certificate chain, leaf first
	TLSKeyFile        string        // HSRCPAY_TLS_KEY_FILE, PEM private key of the leaf
	TLSReloadInterval time.Duration // HSRCPAY_TLS_RELOAD_INTERVAL: how often the files are checked for a change
}

// Var documents one setting; the serve command turns each into a flag too
// (HSRCPAY_RATE_LIMIT_LIVE → --rate-limit-live).
type Var struct{ Name, Default, Help string }

// Variables lists every setting, in the README's order.
var Variables = []Var{
	{"HSRCPAY_ADDR", "127.0.0.1:8080", "listen address (host:port)"},
	{"HSRCPAY_METRICS_ADDR", "127.0.0.1:9090", "Prometheus /metrics listen address (host:port), apart from the API; empty: no metrics listener"},
	{"HSRCPAY_DATABASE_URL", "sqlite:./data", "sqlite:DIR (live.db and sandbox.db in DIR) or postgres://user@host:5432/db"},
	{"HSRCPAY_MIGRATE", MigrateAuto, "auto: serve (and every command that opens the store) applies the pending migrations at start, under a PostgreSQL advisory lock; off: it never migrates and refuses to start (exit 1) on a schema older or newer than the binary's, naming the command to run ('hsrcpay-server migrate up')"},
	{"HSRCPAY_MIGRATION_DATABASE_URL", "", "postgres://owner@host:5432/db: the URL 'hsrcpay-server migrate' (and serve with HSRCPAY_MIGRATE=auto) applies migrations with, for a role that may change the schema, the same database as HSRCPAY_DATABASE_URL (not through a transaction pooler); the application's role then needs no DDL rights. Unset: HSRCPAY_DATABASE_URL's. PostgreSQL only"},
	{"HSRCPAY_STORE_TIMEOUT", "5s", "longest any store call may take (a read, a whole unit of work with its commit, waiting for a connection or the SQLite writer), 10ms to 5m; past it the request answers 503 (50300). PostgreSQL also gets it as statement_timeout and connect timeout"},
	{"HSRCPAY_TLS_CERT_FILE", "", "PEM certificate chain (leaf first) to serve HSRCPAY_ADDR over HTTPS (TLS 1.2+, HTTP/2); with HSRCPAY_TLS_KEY_FILE, or neither (plain HTTP). Reloaded when it changes, without a restart"},
	{"HSRCPAY_TLS_KEY_FILE", "", "PEM private key of HSRCPAY_TLS_CERT_FILE's leaf; a pair that does not load or match stops the server at start"},
	{"HSRCPAY_TLS_RELOAD_INTERVAL", "5s", "how often the TLS files are checked for a change (modification time, size, replaced file), 100ms to 1h; a changed pair that fails to load is logged and the previous one kept"},
	{"HSRCPAY_SQLITE_SYNCHRONOUS", "NORMAL", "SQLite synchronous pragma: NORMAL survives a process crash, FULL also power loss"},
	{"HSRCPAY_REDIS_URL", "", "redis://host:6379/0: share rate-limit budgets and credential-cache invalidations across replicas (in memory when unset)"},
	{"HSRCPAY_DEPLOYMENT", "default", "this deployment's name (1-63 lowercase letters, digits, - or _): replicas with the same name share credential-cache invalidations through Redis, others on the same Redis do not hear them (channel hsrcpay:NAME:credcache:invalidate; default keeps hsrcpay:credcache:invalidate); every replica of a deployment and its bootstrap/rotate-managed commands need the same name"},
	{"HSRCPAY_CREDENTIAL_CACHE_TTL", "5s", "longest an API key's lookup is reused (0 to 1m; 0: no cache); a changed key is refused at once on this replica, within 1s on the others with Redis, within this without"},
	{"HSRCPAY_CREDENTIAL_CACHE_KEYS", "100000", "most API keys the credential cache holds per replica (1 to 100000000); past it the least recently used go. Nothing is allocated before keys are used, and an entry lives at most HSRCPAY_CREDENTIAL_CACHE_TTL, so a cache larger than (distinct keys used per second) × TTL never fills"},
	{"HSRCPAY_CREDENTIAL_CACHE_MEMORY", "128MiB", "most memory the credential cache's keys take per replica (bytes, or a number with KiB, MiB or GiB; 1MiB to 64GiB), counted per entry as it is cached: ~1 KiB for a key whose permissions and metadata other keys share, more with metadata of its own; past it the least recently used go. Unknown keys (at most 10000, ~2 MiB) come on top"},
	{"HSRCPAY_IDEMPOTENCY_KEY_FILE", "", "32 random bytes (raw or base64) sealing the answers kept for Idempotency-Key replays; shared by every replica. Unset with sqlite:DIR: DIR.idempotency.key, created (0600) on first start; unset with PostgreSQL: answers are not kept (retries of a completed request get 409)"},
	{"HSRCPAY_JWT_JWKS_URL", "", "auth provider's JWKS URL; enables JWT bearer tokens"},
	{"HSRCPAY_JWT_PUBLIC_KEY_FILE", "", "PEM public key (RSA, ECDSA or Ed25519) instead of a JWKS URL, for local use"},
	{"HSRCPAY_JWT_ISSUER", "", "required iss claim (required with JWTs)"},
	{"HSRCPAY_JWT_AUDIENCE", "", "required aud claim (required with JWTs)"},
	{"HSRCPAY_JWT_MAX_LIFETIME", "24h", "longest JWT accepted: exp - iat (exp - now without iat), 1m to 720h"},
	{"HSRCPAY_RATE_LIMIT_LIVE", "100", "requests per second per live credential"},
	{"HSRCPAY_RATE_LIMIT_TEST", "25", "requests per second per sandbox credential"},
	{"HSRCPAY_MAX_ACTIVE_KEYS", "500", "most keys an account may hold per mode that are neither deleted nor expired"},
	{"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE", "1000", "requests per second per live account, all its keys together"},
	{"HSRCPAY_RATE_LIMIT_ACCOUNT_TEST", "100", "requests per second per sandbox account, all its keys together"},
	{"HSRCPAY_AUTH_FAILURE_LIMIT", "10", "failed authentications per second per client address (IPv6: per /64); over it, 429"},
	{"HSRCPAY_VALIDATE_RESPONSES", "0.01", "check responses against openapi.yaml (a violation becomes a logged 500): true (every response: development, CI), false (none), or the share of requests past authentication, rate limits and permission check to sample, 0 to 1"},
	{"HSRCPAY_USAGE_FLUSH_INTERVAL", "5s", "how often last_used_at/last_used_ip are written"},
	{"HSRCPAY_TRUSTED_PROXIES", "", "comma-separated IP addresses and CIDRs (IPv4, IPv6) of the proxies in front of the server, allowed to set X-Forwarded-For; the client address is the rightmost X-Forwarded-For address that is not one of them. Empty: none, the peer's own address is the client's (replaces HSRCPAY_TRUST_PROXY)"},
	{"HSRCPAY_LOG_LEVEL", "info", "debug, info, warn or error (JSON logs on stderr)"},
	{"HSRCPAY_SHUTDOWN_TIMEOUT", "15s", "how long SIGTERM waits for in-flight requests"},
	{"HSRCPAY_SHUTDOWN_DRAIN", "5s", "after SIGTERM, how long the server keeps serving before it stops accepting (0 to 5m): /readyz answers 503 and every response closes its connection, so clients and load balancers move away before the port closes; then in-flight requests get HSRCPAY_SHUTDOWN_TIMEOUT"},
	{"HSRCPAY_DEMO_ACCOUNT", "", "create this sandbox account at start and print its keys (make run sets acct_demo)"},
	{"HSRCPAY_SECRET_SCANNING_KEYS_FILE", "", "GitHub's secret scanning public keys (JSON key document): turns on POST /v1/secret-scanning/github"},
	{"HSRCPAY_SECRET_SCANNING_KEYS_URL", "", "or the URL GitHub publishes them at (https://api.github.com/meta/public_keys/secret_scanning), re-read hourly"},
	{"HSRCPAY_SECRET_SCANNING_RATE_LIMIT", "10", "leak reports per second per client address"},
}

// Defaults are what an unset variable means.
func Defaults() Config {
	return Config{
		Addr:               "127.0.0.1:8080",
		MetricsAddr:        "127.0.0.1:9090",
		DatabaseURL:        "sqlite:./data",
		Migrate:            MigrateAuto,
		Deployment:         "default",
		SQLiteSynchronous:  "NORMAL",
		JWTMaxLifetime:     24 * time.Hour,
		RateLimitLive:      100,
		RateLimitSandbox:   25,
		MaxActiveKeys:      500,
		CredentialCacheTTL: 5 * time.Second,
		ResponseValidation: DefaultResponseValidation,
		StoreTimeout:       5 * time.Second,
		UsageFlushInterval: 5 * time.Second,
		LogLevel:           slog.LevelInfo,
		ShutdownTimeout:    15 * time.Second,
		ShutdownDrain:      5 * time.Second,

		AccountRateLimitLive:    1000,
		AccountRateLimitSandbox: 100,
		AuthFailureLimit:        10,
		SecretScanningLimit:     10,
		TLSReloadInterval:       5 * time.Second,
		CredentialCacheKeys:     100_000,
		CredentialCacheMemory:   128 << 20,
	}
}

// FromEnv reads the variables over the defaults.
func FromEnv() (Config, error) { return Load(os.LookupEnv) }

// Load reads settings through lookup (os.LookupEnv, or a map in tests).
func Load(lookup func(string) (string, bool)) (Config, error) {
	c := Defaults()
	var errs []error
	str := func(name string, dst *string) {
		if v, ok := lookup(name); ok {
			*dst = strings.TrimSpace(v)
		}
	}
	integer := func(name string, dst *int, lo, hi int) {
		if v, ok := lookup(name); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil || n < lo || n > hi {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number from %d to %d", name, v, lo, hi))
				return
			}
			*dst = n
		}
	}
	boolean := func(name string, dst *bool) {
		if v, ok := lookup(name); ok {
			b, err := strconv.ParseBool(strings.TrimSpace(v))
			if err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: want true or false", name, v))
				return
			}
			*dst = b
		}
	}
	duration := func(name string, dst *time.Duration, lo, hi time.Duration) {
		if v, ok := lookup(name); ok {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil || d < lo || d > hi {
				errs = append(errs, fmt.Errorf("%s=%q: want a duration from %s to %s, e.g. %s", name, v, lo, hi, *dst))
				return
			}
			*dst = d
		}
	}
	str("HSRCPAY_ADDR", &c.Addr)
	str("HSRCPAY_METRICS_ADDR", &c.MetricsAddr)
	str("HSRCPAY_DATABASE_URL", &c.DatabaseURL)
	str("HSRCPAY_MIGRATE", &c.Migrate)
	str("HSRCPAY_MIGRATION_DATABASE_URL", &c.MigrationURL)
	str("HSRCPAY_TLS_CERT_FILE", &c.TLSCertFile)
	str("HSRCPAY_TLS_KEY_FILE", &c.TLSKeyFile)
	duration("HSRCPAY_TLS_RELOAD_INTERVAL", &c.TLSReloadInterval, 100*time.Millisecond, time.Hour)
	str("HSRCPAY_SQLITE_SYNCHRONOUS", &c.SQLiteSynchronous)
	str("HSRCPAY_JWT_JWKS_URL", &c.JWKSURL)
	str("HSRCPAY_JWT_PUBLIC_KEY_FILE", &c.JWTPublicKeyFile)
	str("HSRCPAY_JWT_ISSUER", &c.JWTIssuer)
	str("HSRCPAY_JWT_AUDIENCE", &c.JWTAudience)
	duration("HSRCPAY_JWT_MAX_LIFETIME", &c.JWTMaxLifetime, time.Minute, 720*time.Hour)
	integer("HSRCPAY_RATE_LIMIT_LIVE", &c.RateLimitLive, 1, 1_000_000)
	integer("HSRCPAY_RATE_LIMIT_TEST", &c.RateLimitSandbox, 1, 1_000_000)
	integer("HSRCPAY_MAX_ACTIVE_KEYS", &c.MaxActiveKeys, 2, 1_000_000)
	integer("HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE", &c.AccountRateLimitLive, 1, 1_000_000)
	integer("HSRCPAY_RATE_LIMIT_ACCOUNT_TEST", &c.AccountRateLimitSandbox, 1, 1_000_000)
	integer("HSRCPAY_AUTH_FAILURE_LIMIT", &c.AuthFailureLimit, 1, 1_000_000)
	if v, ok := lookup("HSRCPAY_VALIDATE_RESPONSES"); ok {
		f, err := ParseResponseValidation(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("HSRCPAY_VALIDATE_RESPONSES=%q: %w", v, err))
		} else {
			c.ResponseValidation = f
		}
	}
	duration("HSRCPAY_USAGE_FLUSH_INTERVAL", &c.UsageFlushInterval, 10*time.Millisecond, time.Hour)
	str("HSRCPAY_TRUSTED_PROXIES", &c.TrustedProxies)
	if _, err := ParseTrustedProxies(c.TrustedProxies); err != nil {
		errs = append(errs, fmt.Errorf("HSRCPAY_TRUSTED_PROXIES=%q: %w", c.TrustedProxies, err))
	}
	// HSRCPAY_TRUST_PROXY=true trusted every private, loopback and
	// link-local neighbour to set X-Forwarded-For (issue 17): anyone beside
	// the server could then choose its address, escape its failed-
	// authentication budget, block a victim's, and write a forged client_ip
	// into the audit trail. It is refused rather than mapped to a guess of
	// the proxies; false, its old default, still means what it meant.
	var trustProxy bool
	boolean("HSRCPAY_TRUST_PROXY", &trustProxy)
	if trustProxy {
		errs = append(errs, errors.New("HSRCPAY_TRUST_PROXY is replaced by HSRCPAY_TRUSTED_PROXIES=<your proxies' addresses or CIDRs> "+
			"(e.g. 10.0.0.0/8 or 192.0.2.10,2001:db8::/64); it trusted every private, loopback and link-local address"))
	}
	str("HSRCPAY_DEMO_ACCOUNT", &c.DemoAccount)
	str("HSRCPAY_SECRET_SCANNING_KEYS_FILE", &c.SecretScanningKeysFile)
	str("HSRCPAY_SECRET_SCANNING_KEYS_URL", &c.SecretScanningKeysURL)
	integer("HSRCPAY_SECRET_SCANNING_RATE_LIMIT", &c.SecretScanningLimit, 1, 1_000_000)
	str("HSRCPAY_REDIS_URL", &c.RedisURL)
	str("HSRCPAY_IDEMPOTENCY_KEY_FILE", &c.IdempotencyKeyFile)
	str("HSRCPAY_DEPLOYMENT", &c.Deployment)
	if !ValidDeployment(c.Deployment) {
		errs = append(errs, fmt.Errorf("HSRCPAY_DEPLOYMENT=%q: want 1-63 lowercase letters, digits, - or _, starting with a letter or digit", c.Deployment))
	}
	// At most a minute: without Redis (or with a replica cut off from it) the
	// TTL is how long a revoked key may still work on the other replicas.
	duration("HSRCPAY_CREDENTIAL_CACHE_TTL", &c.CredentialCacheTTL, 0, time.Minute)
	integer("HSRCPAY_CREDENTIAL_CACHE_KEYS", &c.CredentialCacheKeys, 1, 100_000_000)
	if v, ok := lookup("HSRCPAY_CREDENTIAL_CACHE_MEMORY"); ok {
		n, err := ParseBytes(v)
		if err != nil || n < 1<<20 || n > 64<<30 {
			errs = append(errs, fmt.Errorf("HSRCPAY_CREDENTIAL_CACHE_MEMORY=%q: want 1MiB to 64GiB (bytes, or a whole number with KiB, MiB or GiB, e.g. 128MiB)", v))
		} else {
			c.CredentialCacheMemory = n
		}
	}
	duration("HSRCPAY_STORE_TIMEOUT", &c.StoreTimeout, 10*time.Millisecond, 5*time.Minute)
	duration("HSRCPAY_SHUTDOWN_TIMEOUT", &c.ShutdownTimeout, 0, 10*time.Minute)
	duration("HSRCPAY_SHUTDOWN_DRAIN", &c.ShutdownDrain, 0, 5*time.Minute)
	if v, ok := lookup("HSRCPAY_LOG_LEVEL"); ok {
		if err := c.LogLevel.UnmarshalText([]byte(strings.TrimSpace(v))); err != nil {
			errs = append(errs, fmt.Errorf("HSRCPAY_LOG_LEVEL=%q: want debug, info, warn or error", v))
		}
	}

	if !validSynchronous(c.SQLiteSynchronous) {
		errs = append(errs, fmt.Errorf("HSRCPAY_SQLITE_SYNCHRONOUS=%q: want NORMAL, FULL, OFF or EXTRA", c.SQLiteSynchronous))
	}
	if !validAddr(c.Addr) {
		errs = append(errs, fmt.Errorf("HSRCPAY_ADDR=%q: want host:port with a port from 0 to 65535, e.g. 127.0.0.1:8080", c.Addr))
	}
	if c.MetricsAddr != "" && !validAddr(c.MetricsAddr) {
		errs = append(errs, fmt.Errorf("HSRCPAY_METRICS_ADDR=%q: want host:port with a port from 0 to 65535, e.g. 127.0.0.1:9090, or empty for no metrics listener", c.MetricsAddr))
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		// One without the other is a half-done setup: serving plain HTTP
		// instead would send credentials in the clear to clients that
		// expect TLS.
		errs = append(errs, fmt.Errorf("HSRCPAY_TLS_CERT_FILE=%q and HSRCPAY_TLS_KEY_FILE=%q: set both (HTTPS) or neither (plain HTTP)", c.TLSCertFile, c.TLSKeyFile))
	}
	kind, _, err := ParseDatabaseURL(c.DatabaseURL)
	if err != nil {
		errs = append(errs, fmt.Errorf("HSRCPAY_DATABASE_URL: %w", err))
	}
	if c.Migrate = strings.ToLower(c.Migrate); c.Migrate != MigrateAuto && c.Migrate != MigrateOff {
		errs = append(errs, fmt.Errorf("HSRCPAY_MIGRATE=%q: want auto or off", c.Migrate))
	}
	if c.MigrationURL != "" {
		// SQLite has no roles: the files are migrated by whoever opens them.
		mkind, _, merr := ParseDatabaseURL(c.MigrationURL)
		switch {
		case merr != nil:
			errs = append(errs, fmt.Errorf("HSRCPAY_MIGRATION_DATABASE_URL: %w", merr))
		case mkind != Postgres || (err == nil && kind != Postgres):
			errs = append(errs, fmt.Errorf("HSRCPAY_MIGRATION_DATABASE_URL=%q: only for PostgreSQL, with a postgres:// HSRCPAY_DATABASE_URL (SQLite has no roles: leave it unset)", redact(c.MigrationURL)))
		}
	}
	if c.JWKSURL != "" && c.JWTPublicKeyFile != "" {
		errs = append(errs, errors.New("set one of HSRCPAY_JWT_JWKS_URL and HSRCPAY_JWT_PUBLIC_KEY_FILE, not both"))
	}
	if c.JWKSURL != "" {
		if u, err := url.Parse(c.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || !validURLPort(u.Port()) {
			errs = append(errs, fmt.Errorf("HSRCPAY_JWT_JWKS_URL=%q: want an http(s) URL with a host and, if any, a port from 1 to 65535", redact(c.JWKSURL)))
		}
	}
	if c.SecretScanningKeysFile != "" && c.SecretScanningKeysURL != "" {
		errs = append(errs, errors.New("set one of HSRCPAY_SECRET_SCANNING_KEYS_FILE and HSRCPAY_SECRET_SCANNING_KEYS_URL, not both"))
	}
	if c.SecretScanningKeysURL != "" {
		if u, err := url.Parse(c.SecretScanningKeysURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" || !validURLPort(u.Port()) {
			errs = append(errs, fmt.Errorf("HSRCPAY_SECRET_SCANNING_KEYS_URL=%q: want an http(s) URL with a host and, if any, a port from 1 to 65535", redact(c.SecretScanningKeysURL)))
		}
	}
	if (c.JWKSURL != "" || c.JWTPublicKeyFile != "") && (c.JWTIssuer == "" || c.JWTAudience == "") {
		errs = append(errs, errors.New("HSRCPAY_JWT_ISSUER and HSRCPAY_JWT_AUDIENCE are required when JWTs are enabled"))
	}
	if c.RedisURL != "" {
		if err := checkRedisURL(c.RedisURL); err != nil {
			errs = append(errs, fmt.Errorf("HSRCPAY_REDIS_URL=%q: %w", redact(c.RedisURL), err))
		}
	}
	if c.DemoAccount != "" && !ValidAccountID(c.DemoAccount) {
		errs = append(errs, fmt.Errorf("HSRCPAY_DEMO_ACCOUNT=%q: want 1-64 letters, digits, _ or -", c.DemoAccount))
	}
	return c, errors.Join(errs...)
}

// DefaultResponseValidation is production's share of responses checked
// against the spec: one request in a hundred that passed authentication, its
// budgets and its permission check. Checking a response costs 10-30 µs of CPU
// (README, Benchmarks), as much as a whole rejected request; a hundredth of
// that is noise, and at any real traffic a response that drifted from the
// spec still shows within seconds (a logged 500, and
// hsrcpay_responses_validated_total{result="invalid"}). Tests and CI check
// every response.
const DefaultResponseValidation = 0.01

// ParseResponseValidation reads HSRCPAY_VALIDATE_RESPONSES: true (or 1) is
// every response, false (or 0) none, and a number from 0 to 1 the share of
// requests whose response is checked.
func ParseResponseValidation(s string) (float64, error) {
	s = strings.TrimSpace(s)
	if b, err := strconv.ParseBool(s); err == nil {
		if b {
			return 1, nil
		}
		return 0, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f <= 1) { // !(…) also refuses NaN
		return 0, errors.New("want true, false, or the share of responses to check from 0 to 1 (e.g. 0.01)")
	}
	return f, nil
}

// ParseBytes reads a size: a whole number of bytes, or of KiB, MiB or GiB
// (powers of 1024; "128MiB", "1 GiB"). Decimal units (MB) are refused
// rather than guessed.
func ParseBytes(s string) (int64, error) {
	s = strings.TrimSpace(s)
	unit := int64(1)
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}} {
		if rest, ok := strings.CutSuffix(s, u.suffix); ok {
			s, unit = strings.TrimSpace(rest), u.size
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 || n > (1<<62)/unit {
		return 0, errors.New("want a whole number of bytes, KiB, MiB or GiB")
	}
	return n * unit, nil
}

// ValidDeployment accepts a deployment name: 1-63 lowercase letters,
// digits, - or _, starting with a letter or digit. It becomes part of a
// Redis channel name (hsrcpay:NAME:credcache:invalidate), so no ':' (the
// separator), no '*' or '?' (pattern subscriptions), nothing a shell or a
// dashboard variable would need quoted.
func ValidDeployment(s string) bool {
	if len(s) < 1 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '-' || c == '_') && i > 0:
		default:
			return false
		}
	}
	return true
}

// validAddr accepts host:port (host may be empty: every interface) with a
// numeric port from 0 to 65535 (0: any free port).
func validAddr(s string) bool {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n <= 65535 && port == strconv.Itoa(n)
}

// validSynchronous accepts SQLite's synchronous levels the store allows
// (any case; empty means NORMAL).
func validSynchronous(s string) bool {
	switch strings.ToUpper(s) {
	case "", "OFF", "NORMAL", "FULL", "EXTRA":
		return true
	}
	return false
}

// validURLPort accepts a URL's port: none, or a number from 1 to 65535.
func validURLPort(port string) bool {
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535 && port == strconv.Itoa(n)
}

// checkRedisURL checks what go-redis's ParseURL reads: redis:// or
// rediss://, a host, a port from 1 to 65535, and a numeric database.
func checkRedisURL(s string) error {
	const want = "want redis://host:port/db (or rediss://)"
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
		return errors.New(want)
	}
	if !validURLPort(u.Port()) {
		return fmt.Errorf("port %q: want 1 to 65535", u.Port())
	}
	db := strings.Trim(u.Path, "/")
	if n, err := strconv.Atoi(db); db != "" && (err != nil || n < 0 || strings.Contains(db, "/")) {
		return fmt.Errorf("database %q: want a number, e.g. redis://host:6379/0", db)
	}
	return nil
}

// checkPostgresURL checks the host list's ports (postgres://h1:5432,h2:5433/db
// names several hosts); everything else is the driver's to judge.
func checkPostgresURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%q: not a URL", redact(s))
	}
	for _, hp := range strings.Split(u.Host, ",") {
		port := ""
		if strings.HasPrefix(hp, "[") { // [IPv6]:port
			if i := strings.LastIndex(hp, "]:"); i >= 0 {
				port = hp[i+2:]
			}
		} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			port = hp[i+1:]
		}
		if !validURLPort(port) || strings.HasSuffix(hp, ":") {
			return fmt.Errorf("%q: port %q: want 1 to 65535", redact(s), port)
		}
	}
	if p := u.Query().Get("port"); p != "" && !validURLPort(p) {
		return fmt.Errorf("%q: port %q: want 1 to 65535", redact(s), p)
	}
	return nil
}

// HSRCPAY_MIGRATE values.
const (
	MigrateAuto = "auto" // apply pending migrations when the store is opened
	MigrateOff  = "off"  // never; refuse a schema at another version than the binary's
)

// Database kinds.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// ParseDatabaseURL returns the kind and its location: a directory for
// "sqlite:DIR", the URL itself for "postgres://…".
func ParseDatabaseURL(s string) (kind, location string, err error) {
	switch {
	case strings.HasPrefix(s, "sqlite:"):
		dir := strings.TrimPrefix(strings.TrimPrefix(s, "sqlite:"), "//")
		if dir == "" {
			return "", "", errors.New(`sqlite needs a directory, e.g. "sqlite:./data"`)
		}
		return SQLite, dir, nil
	case strings.HasPrefix(s, "postgres://"), strings.HasPrefix(s, "postgresql://"):
		if err := checkPostgresURL(s); err != nil {
			return "", "", err
		}
		return Postgres, s, nil
	}
	return "", "", fmt.Errorf(`%q: want "sqlite:DIR" or "postgres://…"`, redact(s))
}

// redact hides a password in a URL before it is printed.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}

// ValidAccountID mirrors the spec's AccountId pattern (also used by bootstrap).
func ValidAccountID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && (r == '_' || r == '-'))
		if !ok {
			return false
		}
	}
	return true
}

// ParseTrustedProxies reads HSRCPAY_TRUSTED_PROXIES: comma-separated IP
// addresses (a single host) and CIDRs, IPv4 or IPv6; spaces and empty items
// are ignored, "" trusts nothing. An IPv4-mapped IPv6 entry is read as its
// IPv4 address (the server compares unmapped addresses). Refused: anything
// that is not an address or a CIDR, a CIDR with host bits set (10.1.2.3/8:
// which was meant?), an address with a zone, and a /0, which would trust
// every address to name its client, the very hole this setting closes.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		var p netip.Prefix
		if strings.Contains(item, "/") {
			var err error
			if p, err = netip.ParsePrefix(item); err != nil {
				return nil, fmt.Errorf("%q: want an IP address or a CIDR such as 10.0.0.0/8 or 2001:db8::/32", item)
			}
			if p != p.Masked() {
				return nil, fmt.Errorf("%q: host bits set; want %s (the network) or a single address", item, p.Masked())
			}
		} else {
			a, err := netip.ParseAddr(item)
			if err != nil || a.Zone() != "" {
				return nil, fmt.Errorf("%q: want an IP address or a CIDR such as 10.0.0.0/8 or 2001:db8::/32", item)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() {
			if p.Bits() < 96 {
				return nil, fmt.Errorf("%q: an IPv4-mapped prefix shorter than /96; write the IPv4 CIDR", item)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		if p.Bits() == 0 {
			return nil, fmt.Errorf("%q trusts every address to set X-Forwarded-For, so any client could choose its address; name your proxies", item)
		}
		out = append(out, p)
	}
	return out, nil
}
