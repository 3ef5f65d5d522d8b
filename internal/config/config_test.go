package config

import (
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.MetricsAddr != "127.0.0.1:9090" || c.DatabaseURL != "sqlite:./data" || c.RateLimitLive != 100 || c.ResponseValidation != DefaultResponseValidation {
		t.Fatalf("%+v", c)
	}
	// An account's budget is above its keys' (several keys at full speed fit in it).
	if c.AccountRateLimitLive != 1000 || c.AccountRateLimitSandbox != 100 || c.AuthFailureLimit != 10 ||
		c.AccountRateLimitLive <= c.RateLimitLive || c.AccountRateLimitSandbox <= c.RateLimitSandbox {
		t.Fatalf("budgets: %+v", c)
	}
	// Defaults() and the documented defaults agree.
	for _, v := range Variables {
		if v.Default == "" {
			continue
		}
		got, err := Load(env(map[string]string{v.Name: v.Default}))
		if err != nil || got != c {
			t.Errorf("%s=%s (its documented default) gives %+v, %v", v.Name, v.Default, got, err)
		}
	}
}

// TestResponseValidation: true and false keep their meaning (every response,
// none); a number is the share sampled.
func TestCredentialCacheBounds(t *testing.T) {
	c, err := Load(env(map[string]string{"HSRCPAY_CREDENTIAL_CACHE_KEYS": "1000000", "HSRCPAY_CREDENTIAL_CACHE_MEMORY": "1GiB"}))
	if err != nil || c.CredentialCacheKeys != 1_000_000 || c.CredentialCacheMemory != 1<<30 {
		t.Fatalf("%d keys, %d bytes, %v", c.CredentialCacheKeys, c.CredentialCacheMemory, err)
	}
	for in, want := range map[string]int64{"1048576": 1 << 20, "64KiB": 64 << 10, "3 MiB": 3 << 20, "2GiB": 2 << 30} {
		if n, err := ParseBytes(in); err != nil || n != want {
			t.Errorf("ParseBytes(%q) = %d, %v; want %d", in, n, err, want)
		}
	}
}

func TestResponseValidation(t *testing.T) {
	for in, want := range map[string]float64{"true": 1, "TRUE": 1, "1": 1, "false": 0, "0": 0, "0.01": 0.01, "0.5": 0.5, "1.0": 1, "0.0": 0} {
		c, err := Load(env(map[string]string{"HSRCPAY_VALIDATE_RESPONSES": in}))
		if err != nil || c.ResponseValidation != want {
			t.Errorf("HSRCPAY_VALIDATE_RESPONSES=%s: %v, %v; want %v", in, c.ResponseValidation, err, want)
		}
	}
}

func TestBudgetOverrides(t *testing.T) {
	c, err := Load(env(map[string]string{
		"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE": "5000", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST": " 7 ", "HSRCPAY_AUTH_FAILURE_LIMIT": "3",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.AccountRateLimitLive != 5000 || c.AccountRateLimitSandbox != 7 || c.AuthFailureLimit != 3 {
		t.Fatalf("%+v", c)
	}
	for _, name := range []string{"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST", "HSRCPAY_AUTH_FAILURE_LIMIT"} {
		for _, bad := range []string{"0", "-1", "1000001", "1.5", "ten", ""} {
			_, err := Load(env(map[string]string{name: bad}))
			if err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v does not name the variable", name, bad, err)
			}
		}
	}
}

func TestOverrides(t *testing.T) {
	c, err := Load(env(map[string]string{
		"HSRCPAY_ADDR": ":9090", "HSRCPAY_DATABASE_URL": "postgres://u@db/x", "HSRCPAY_RATE_LIMIT_TEST": "7",
		"HSRCPAY_USAGE_FLUSH_INTERVAL": "250ms", "HSRCPAY_LOG_LEVEL": "debug",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != ":9090" || c.RateLimitSandbox != 7 || c.UsageFlushInterval != 250*time.Millisecond {
		t.Fatalf("%+v", c)
	}
}

func TestBadValuesNamed(t *testing.T) {
	for name, vars := range map[string]map[string]string{
		"HSRCPAY_ADDR":                 {"HSRCPAY_ADDR": "8080"},
		"HSRCPAY_METRICS_ADDR":         {"HSRCPAY_METRICS_ADDR": "9090"},
		"HSRCPAY_DATABASE_URL":         {"HSRCPAY_DATABASE_URL": "mysql://x"},
		"HSRCPAY_RATE_LIMIT_LIVE":      {"HSRCPAY_RATE_LIMIT_LIVE": "0"},
		"HSRCPAY_VALIDATE_RESPONSES":   {"HSRCPAY_VALIDATE_RESPONSES": "maybe"},
		"HSRCPAY_USAGE_FLUSH_INTERVAL": {"HSRCPAY_USAGE_FLUSH_INTERVAL": "soon"},
		"HSRCPAY_LOG_LEVEL":            {"HSRCPAY_LOG_LEVEL": "loud"},
		"HSRCPAY_JWT_ISSUER":           {"HSRCPAY_JWT_JWKS_URL": "https://auth.example/jwks.json"},
		"HSRCPAY_JWT_JWKS_URL":         {"HSRCPAY_JWT_JWKS_URL": "ftp://x", "HSRCPAY_JWT_ISSUER": "i", "HSRCPAY_JWT_AUDIENCE": "a"},
		"HSRCPAY_DEMO_ACCOUNT":         {"HSRCPAY_DEMO_ACCOUNT": "bad id!"},
		"HSRCPAY_JWT_MAX_LIFETIME":     {"HSRCPAY_JWT_MAX_LIFETIME": "forever"},
	} {
		_, err := Load(env(vars))
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: error %v does not name the variable", name, err)
		}
	}
}

func TestDatabaseURLPasswordRedacted(t *testing.T) {
	_, err := Load(env(map[string]string{"HSRCPAY_DATABASE_URL": "mysql://user:hunter2@db/x"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("password leaked or no error: %v", err)
	}
}

// TestVariablesDocumented keeps the documented list and the parser in step.
func TestVariablesDocumented(t *testing.T) {
	for _, v := range Variables {
		if _, err := Load(env(map[string]string{v.Name: "\x00not valid\x00"})); err == nil && v.Default != "" {
			// A string setting accepts anything; the numeric and boolean ones must complain.
			switch v.Name {
			case "HSRCPAY_ADDR", "HSRCPAY_METRICS_ADDR", "HSRCPAY_DATABASE_URL", "HSRCPAY_MIGRATE", "HSRCPAY_SQLITE_SYNCHRONOUS", "HSRCPAY_RATE_LIMIT_LIVE", "HSRCPAY_RATE_LIMIT_TEST",
				"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST", "HSRCPAY_AUTH_FAILURE_LIMIT",
				"HSRCPAY_VALIDATE_RESPONSES", "HSRCPAY_USAGE_FLUSH_INTERVAL", "HSRCPAY_TRUSTED_PROXIES",
				"HSRCPAY_LOG_LEVEL", "HSRCPAY_SHUTDOWN_TIMEOUT", "HSRCPAY_SHUTDOWN_DRAIN", "HSRCPAY_JWT_MAX_LIFETIME", "HSRCPAY_STORE_TIMEOUT", "HSRCPAY_SECRET_SCANNING_RATE_LIMIT",
				"HSRCPAY_TLS_RELOAD_INTERVAL":
				t.Errorf("%s accepted a garbage value", v.Name)
			}
		}
	}
}

// TestJWTMaxLifetimeConfig: a duration from 1m to 720h, 24h when unset.
func TestJWTMaxLifetimeConfig(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.JWTMaxLifetime != 24*time.Hour {
		t.Fatalf("default %s, %v; want 24h", c.JWTMaxLifetime, err)
	}
	for v, want := range map[string]time.Duration{
		"1m": time.Minute, "90m": 90 * time.Minute, " 2h ": 2 * time.Hour, "24h": 24 * time.Hour, "720h": 720 * time.Hour,
	} {
		c, err := Load(env(map[string]string{"HSRCPAY_JWT_MAX_LIFETIME": v}))
		if err != nil || c.JWTMaxLifetime != want {
			t.Errorf("%q: %s, %v; want %s", v, c.JWTMaxLifetime, err, want)
		}
	}
	for _, v := range []string{"59s", "0", "0s", "-1h", "720h1s", "721h", "1d", "", "24"} {
		_, err := Load(env(map[string]string{"HSRCPAY_JWT_MAX_LIFETIME": v}))
		if err == nil || !strings.Contains(err.Error(), "HSRCPAY_JWT_MAX_LIFETIME") || !strings.Contains(err.Error(), "1m0s to 720h0m0s") {
			t.Errorf("%q: error %v, want one naming the variable and its range", v, err)
		}
	}
	var documented bool
	for _, v := range Variables {
		if v.Name == "HSRCPAY_JWT_MAX_LIFETIME" {
			documented = v.Default == "24h" && v.Help != ""
		}
	}
	if !documented {
		t.Error("HSRCPAY_JWT_MAX_LIFETIME is not in Variables with default 24h and help text")
	}
}

// TestMetricsAddr: host:port with a numeric port 0..65535, like HSRCPAY_ADDR;
// empty turns the metrics listener off.
func TestMetricsAddr(t *testing.T) {
	for in, want := range map[string]string{
		"":                      "",
		"  ":                    "",
		"127.0.0.1:0":           "127.0.0.1:0",
		"127.0.0.1:9091":        "127.0.0.1:9091",
		":9090":                 ":9090",
		"[::1]:65535":           "[::1]:65535",
		"metrics.internal:9100": "metrics.internal:9100",
	} {
		c, err := Load(env(map[string]string{"HSRCPAY_METRICS_ADDR": in}))
		if err != nil || c.MetricsAddr != want {
			t.Errorf("HSRCPAY_METRICS_ADDR=%q: %q, %v; want %q", in, c.MetricsAddr, err, want)
		}
	}
	for _, bad := range []string{"9090", "127.0.0.1", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:http", "127.0.0.1:90a", "127.0.0.1:+90", "127.0.0.1:09090", "[::1:9090"} {
		for _, name := range []string{"HSRCPAY_METRICS_ADDR", "HSRCPAY_ADDR"} {
			if _, err := Load(env(map[string]string{name: bad})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want one naming %s", name, bad, err, name)
			}
		}
	}
}

// TestEveryVariableRefusesBadValues audits every setting: each address, port,
// URL, duration, number, boolean and enumeration refuses a bad value at start
// with an error naming its variable (the server exits 2 on it), and accepts
// the edges of its range.
func TestEveryVariableRefusesBadValues(t *testing.T) {
	jwt := map[string]string{"HSRCPAY_JWT_ISSUER": "i", "HSRCPAY_JWT_AUDIENCE": "a"}
	cases := map[string]struct {
		bad, good []string
		with      map[string]string // other variables set alongside
	}{
		"HSRCPAY_ADDR": {
			bad:  []string{"127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:-1", "127.0.0.1:", "8080", "localhost", "127.0.0.1:http", ""},
			good: []string{"127.0.0.1:0", "127.0.0.1:65535", ":8080", "[::1]:8080", "localhost:8080"},
		},
		"HSRCPAY_METRICS_ADDR": {
			bad:  []string{"127.0.0.1:99999", "127.0.0.1:", "9090", "[::1]"},
			good: []string{"", "127.0.0.1:0", "0.0.0.0:9090"},
		},
		"HSRCPAY_DATABASE_URL": {
			bad: []string{"", "sqlite:", "mysql://db/x", "./data", "postgres://u@db:99999/x", "postgres://u@db:0/x",
				"postgres://u@db:/x", "postgres://u@h1:5432,h2:70000/x", "postgres://u@[::1]:65536/x", "postgres://u@db/x?port=99999"},
			good: []string{"sqlite:./data", "sqlite:///var/lib/hsrcpay", "postgres://u@db/x", "postgres://u@db:5432/x",
				"postgresql://u:p@h1:5432,h2:5433/x", "postgres://u@[::1]:5432/x", "postgres:///x?host=/run/postgresql"},
		},
		"HSRCPAY_MIGRATE": {
			bad:  []string{"", "on", "true", "manual", "auto,off"},
			good: []string{"auto", "off", "OFF", " Auto "},
		},
		// PostgreSQL only, beside a PostgreSQL store.
		"HSRCPAY_MIGRATION_DATABASE_URL": {
			bad:  []string{"sqlite:./data", "mysql://db/x", "postgres://u@db:99999/x", "postgres://owner:p@db:0/x"},
			good: []string{"", "postgres://owner@db/x", "postgresql://owner:p@h1:5432,h2:5433/x"},
			with: map[string]string{"HSRCPAY_DATABASE_URL": "postgres://app@db/x"},
		},
		"HSRCPAY_SQLITE_SYNCHRONOUS": {
			bad:  []string{"SOMETIMES", "2", "NORMAL;"},
			good: []string{"NORMAL", "full", "OFF", "EXTRA"},
		},
		"HSRCPAY_REDIS_URL": {
			bad: []string{"localhost:6379", "http://h:6379", "redis://", "redis://h:99999/0", "redis://h:0/0", "redis://h:6379/db",
				"redis://h:6379/-1", "redis://h:6379/0/1"},
			good: []string{"", "redis://h:6379/0", "rediss://h:6380/2", "redis://h", "redis://u:p@h:6379/0"},
		},
		"HSRCPAY_JWT_JWKS_URL": {
			bad:  []string{"ftp://x/jwks", "auth.example/jwks", "https://", "https://auth.example:99999/jwks", "https://:443/jwks"},
			good: []string{"https://auth.example/.well-known/jwks.json", "http://127.0.0.1:8081/jwks"},
			with: jwt,
		},
		"HSRCPAY_JWT_MAX_LIFETIME": {
			bad:  []string{"59s", "721h", "-1h", "0", "forever", "24", ""},
			good: []string{"1m", "720h", "90m"},
		},
		"HSRCPAY_USAGE_FLUSH_INTERVAL": {
			bad:  []string{"9ms", "2h", "-1s", "0", "soon", ""},
			good: []string{"10ms", "1h", "250ms"},
		},
		"HSRCPAY_CREDENTIAL_CACHE_TTL": {
			bad:  []string{"61s", "2m", "-1s", "5", "never", ""},
			good: []string{"0", "0s", "1ms", "5s", "1m"},
		},
		"HSRCPAY_CREDENTIAL_CACHE_KEYS": {
			bad:  []string{"0", "-1", "100000001", "1e6", "lots", ""},
			good: []string{"1", "1000", "100000", " 1000000 ", "100000000"},
		},
		"HSRCPAY_CREDENTIAL_CACHE_MEMORY": {
			bad:  []string{"0", "1048575", "1023KiB", "65GiB", "128MB", "128M", "1.5GiB", "-1MiB", "MiB", "lots", ""},
			good: []string{"1048576", "1024KiB", "1MiB", "128MiB", "128 MiB", "64GiB"},
		},
		"HSRCPAY_STORE_TIMEOUT": {
			bad:  []string{"9ms", "0", "-1s", "6m", "5", "never", ""},
			good: []string{"10ms", "500ms", "5s", "5m"},
		},
		"HSRCPAY_SHUTDOWN_TIMEOUT": {
			bad:  []string{"11m", "-1s", "quick", "15", ""},
			good: []string{"0s", "0", "10m", "30s"},
		},
		"HSRCPAY_SHUTDOWN_DRAIN": {
			bad:  []string{"6m", "-1s", "soon", "5", ""},
			good: []string{"0s", "0", "5m", "2s"},
		},
		"HSRCPAY_RATE_LIMIT_LIVE":         {bad: []string{"0", "-1", "1000001", "1.5", "lots", ""}, good: []string{"1", "1000000"}},
		"HSRCPAY_RATE_LIMIT_TEST":         {bad: []string{"0", "-5", "1e3", ""}, good: []string{"1", "1000000"}},
		"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE": {bad: []string{"0", "1000001", "x"}, good: []string{"1", "1000000"}},
		"HSRCPAY_RATE_LIMIT_ACCOUNT_TEST": {bad: []string{"0", "1000001", "x"}, good: []string{"1", "1000000"}},
		"HSRCPAY_AUTH_FAILURE_LIMIT":      {bad: []string{"0", "1000001", "x"}, good: []string{"1", "1000000"}},
		"HSRCPAY_MAX_ACTIVE_KEYS":         {bad: []string{"1", "0", "1000001", "many"}, good: []string{"2", "1000000"}},
		"HSRCPAY_VALIDATE_RESPONSES": {
			bad:  []string{"maybe", "yes", "", "1.5", "-0.01", "NaN", "Inf", "1%"},
			good: []string{"true", "false", "0", "1", "0.01", " 0.25 ", "1e-3"},
		},
		// Addresses and CIDRs (TestTrustedProxies); the replaced boolean is refused when true.
		"HSRCPAY_TRUSTED_PROXIES":     {bad: []string{"proxy.internal", "10.0.0.1/8", "0.0.0.0/0", "10.0.0.0/33", "fe80::1%eth0", "10.0.0.1:80"}, good: []string{"", "10.0.0.1", "10.0.0.0/8, 2001:db8::/32 ,::1"}},
		"HSRCPAY_TRUST_PROXY":         {bad: []string{"true", "1", "maybe", "on", ""}, good: []string{"false", "0"}},
		"HSRCPAY_LOG_LEVEL":           {bad: []string{"loud", "verbose", ""}, good: []string{"debug", "INFO", "warn", "error"}},
		"HSRCPAY_DEMO_ACCOUNT":        {bad: []string{"bad id!", "_acct", strings.Repeat("a", 65)}, good: []string{"", "acct_demo", "a-1"}},
		"HSRCPAY_JWT_PUBLIC_KEY_FILE": {bad: nil, good: []string{"", "/etc/hsrcpay/jwt.pem"}, with: jwt},
		"HSRCPAY_JWT_ISSUER":          {bad: nil, good: []string{"", "https://auth.example/"}},
		"HSRCPAY_JWT_AUDIENCE":        {bad: nil, good: []string{"", "hsrcpay"}},
		// Read at start (server.LoadIdempotencyKey), where a missing or malformed file fails.
		"HSRCPAY_IDEMPOTENCY_KEY_FILE":      {bad: nil, good: []string{"", "/etc/hsrcpay/idempotency.key"}},
		"HSRCPAY_SECRET_SCANNING_KEYS_FILE": {bad: nil, good: []string{"", "/etc/hsrcpay/github-keys.json"}},
		"HSRCPAY_SECRET_SCANNING_KEYS_URL": {
			bad:  []string{"ftp://x/keys", "https://", "api.github.com/meta", "https://u:p@h:0/keys"},
			good: []string{"", "https://api.github.com/meta/public_keys/secret_scanning", "http://127.0.0.1:8081/keys"},
		},
		"HSRCPAY_SECRET_SCANNING_RATE_LIMIT": {bad: []string{"0", "1000001", "x"}, good: []string{"1", "1000000"}},
		// Both files or neither (TestTLSSettings); their contents are read at start.
		"HSRCPAY_TLS_CERT_FILE":       {bad: []string{""}, good: []string{"/etc/hsrcpay/tls.crt"}, with: map[string]string{"HSRCPAY_TLS_KEY_FILE": "/etc/hsrcpay/tls.key"}},
		"HSRCPAY_TLS_KEY_FILE":        {bad: []string{""}, good: []string{"/etc/hsrcpay/tls.key"}, with: map[string]string{"HSRCPAY_TLS_CERT_FILE": "/etc/hsrcpay/tls.crt"}},
		"HSRCPAY_TLS_RELOAD_INTERVAL": {bad: []string{"99ms", "0", "-1s", "61m", "5", "often", ""}, good: []string{"100ms", "5s", "1h"}},
		"HSRCPAY_DEPLOYMENT": {
			bad:  []string{"", "prod:eu", "Prod", "-prod", "_x", "a b", "prod*", strings.Repeat("a", 64)},
			good: []string{"default", "prod", "prod-eu-1", "staging_2", strings.Repeat("a", 63)},
		},
	}
	for _, v := range Variables {
		if _, ok := cases[v.Name]; !ok {
			t.Errorf("%s: no case in this table; add its bad and good values", v.Name)
		}
	}
	for name, tc := range cases {
		vars := func(val string) map[string]string {
			m := map[string]string{name: val}
			for k, v := range tc.with {
				m[k] = v
			}
			return m
		}
		for _, bad := range tc.bad {
			if _, err := Load(env(vars(bad))); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: error %v, want one naming %s", name, bad, err, name)
			} else if strings.Contains(err.Error(), ":p@") {
				t.Errorf("%s=%q: error shows a password: %v", name, bad, err)
			}
		}
		for _, good := range tc.good {
			if _, err := Load(env(vars(good))); err != nil {
				t.Errorf("%s=%q: refused: %v", name, good, err)
			}
		}
	}
}

// TestRedisURLPasswordRedacted: a refused Redis URL is shown without its password.
func TestRedisURLPasswordRedacted(t *testing.T) {
	_, err := Load(env(map[string]string{"HSRCPAY_REDIS_URL": "redis://u:hunter2@h:99999/0"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "HSRCPAY_REDIS_URL") {
		t.Fatalf("password leaked or no error: %v", err)
	}
	_, err = Load(env(map[string]string{"HSRCPAY_DATABASE_URL": "postgres://u:hunter2@db:99999/x"}))
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "HSRCPAY_DATABASE_URL") {
		t.Fatalf("password leaked or no error: %v", err)
	}
}

// TestSecretScanningKeysOneSource: GitHub's keys come from a file or a URL, not both.
func TestSecretScanningKeysOneSource(t *testing.T) {
	_, err := Load(env(map[string]string{"HSRCPAY_SECRET_SCANNING_KEYS_FILE": "/k.json", "HSRCPAY_SECRET_SCANNING_KEYS_URL": "https://api.github.com/meta/public_keys/secret_scanning"}))
	if err == nil || !strings.Contains(err.Error(), "HSRCPAY_SECRET_SCANNING_KEYS_FILE and HSRCPAY_SECRET_SCANNING_KEYS_URL") {
		t.Fatalf("both: %v", err)
	}
	c, err := Load(env(nil))
	if err != nil || c.SecretScanningKeysFile != "" || c.SecretScanningKeysURL != "" || c.SecretScanningLimit != 10 {
		t.Fatalf("defaults: %+v %v", c, err)
	}
}

// TestTrustedProxies: HSRCPAY_TRUSTED_PROXIES reads addresses and CIDRs of
// both families (a single address is its own /32 or /128, an IPv4-mapped
// one its IPv4 address), and refuses anything else naming the entry;
// HSRCPAY_TRUST_PROXY=true, which trusted every private neighbour, is
// refused naming its replacement.
func TestTrustedProxies(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.TrustedProxies != "" {
		t.Fatalf("default %q, %v; want none trusted", c.TrustedProxies, err)
	}
	if ps, err := ParseTrustedProxies(""); err != nil || len(ps) != 0 {
		t.Fatalf("empty: %v, %v", ps, err)
	}
	ps, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.10 ,, 2001:db8::/32,::1, ::ffff:0.0.0.0/96 ")
	if err == nil {
		t.Fatalf("a /0 accepted: %v", ps)
	}
	ps, err = ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.10 ,, 2001:db8::/32,::1, ::ffff:198.51.100.7,::ffff:203.0.113.0/120")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps {
		got = append(got, p.String())
	}
	if want := "10.0.0.0/8 192.0.2.10/32 2001:db8::/32 ::1/128 198.51.100.7/32 203.0.113.0/24"; strings.Join(got, " ") != want {
		t.Fatalf("parsed %q, want %q", strings.Join(got, " "), want)
	}
	for _, bad := range []string{"proxy.internal", "10.0.0.1/8", "10.0.0.0/33", "0.0.0.0/0", "::/0", "fe80::1%eth0", "10.0.0.1:80", "10.0.0.1 10.0.0.2", "10.0.0.0/8,nope"} {
		_, err := Load(env(map[string]string{"HSRCPAY_TRUSTED_PROXIES": bad}))
		if err == nil || !strings.Contains(err.Error(), "HSRCPAY_TRUSTED_PROXIES") {
			t.Errorf("%q: error %v, want one naming HSRCPAY_TRUSTED_PROXIES", bad, err)
		}
	}
	for _, v := range []string{"true", "TRUE", "1"} {
		_, err := Load(env(map[string]string{"HSRCPAY_TRUST_PROXY": v}))
		if err == nil || !strings.Contains(err.Error(), "HSRCPAY_TRUST_PROXY is replaced by HSRCPAY_TRUSTED_PROXIES=<your proxies' addresses or CIDRs>") {
			t.Errorf("HSRCPAY_TRUST_PROXY=%s: %v, want refused naming the replacement", v, err)
		}
	}
	for _, v := range []string{"false", " false ", "0"} {
		if _, err := Load(env(map[string]string{"HSRCPAY_TRUST_PROXY": v})); err != nil {
			t.Errorf("HSRCPAY_TRUST_PROXY=%s (the old default) refused: %v", v, err)
		}
	}
}

// TestMigrationURLNeedsPostgres: a migration URL beside a SQLite store is
// refused (SQLite has no roles), naming the variable, without its password.
func TestMigrationURLNeedsPostgres(t *testing.T) {
	_, err := Load(env(map[string]string{"HSRCPAY_MIGRATION_DATABASE_URL": "postgres://owner:hunter2@db/x"}))
	if err == nil || !strings.Contains(err.Error(), "HSRCPAY_MIGRATION_DATABASE_URL") || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v: want one naming HSRCPAY_MIGRATION_DATABASE_URL, without the password", err)
	}
	c, err := Load(env(map[string]string{"HSRCPAY_DATABASE_URL": "postgres://app@db/x", "HSRCPAY_MIGRATION_DATABASE_URL": "postgres://owner@db/x", "HSRCPAY_MIGRATE": "OFF"}))
	if err != nil || c.MigrationURL != "postgres://owner@db/x" || c.Migrate != MigrateOff {
		t.Fatalf("Load = %+v, %v", c, err)
	}
}

// TestTLSSettings: the certificate and its key come together or not at all
// (one alone is refused, naming both); neither is plain HTTP, the default;
// the reload interval is 5s unless set.
func TestTLSSettings(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil || c.TLSCertFile != "" || c.TLSKeyFile != "" || c.TLSReloadInterval != 5*time.Second {
		t.Fatalf("defaults: %q %q %s, %v; want plain HTTP, 5s", c.TLSCertFile, c.TLSKeyFile, c.TLSReloadInterval, err)
	}
	c, err = Load(env(map[string]string{"HSRCPAY_TLS_CERT_FILE": " /tls/crt.pem ", "HSRCPAY_TLS_KEY_FILE": "/tls/key.pem", "HSRCPAY_TLS_RELOAD_INTERVAL": "250ms"}))
	if err != nil || c.TLSCertFile != "/tls/crt.pem" || c.TLSKeyFile != "/tls/key.pem" || c.TLSReloadInterval != 250*time.Millisecond {
		t.Fatalf("both set: %q %q %s, %v", c.TLSCertFile, c.TLSKeyFile, c.TLSReloadInterval, err)
	}
	for _, m := range []map[string]string{
		{"HSRCPAY_TLS_CERT_FILE": "/tls/crt.pem"},
		{"HSRCPAY_TLS_KEY_FILE": "/tls/key.pem"},
		{"HSRCPAY_TLS_CERT_FILE": "/tls/crt.pem", "HSRCPAY_TLS_KEY_FILE": "  "},
	} {
		_, err := Load(env(m))
		if err == nil || !strings.Contains(err.Error(), "HSRCPAY_TLS_CERT_FILE") || !strings.Contains(err.Error(), "HSRCPAY_TLS_KEY_FILE") ||
			!strings.Contains(err.Error(), "set both") {
			t.Errorf("%v: error %v, want one naming both variables", m, err)
		}
	}
}
