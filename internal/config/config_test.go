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
	if c.Addr != "127.0.0.1:8080" || c.MetricsAddr != "127.0.0.1:9090" || c.DatabaseURL != "sqlite:./data" || c.RateLimitLive != 100 || !c.ValidateResponses {
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
			case "HSRCPAY_ADDR", "HSRCPAY_METRICS_ADDR", "HSRCPAY_DATABASE_URL", "HSRCPAY_RATE_LIMIT_LIVE", "HSRCPAY_RATE_LIMIT_TEST",
				"HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE", "HSRCPAY_RATE_LIMIT_ACCOUNT_TEST", "HSRCPAY_AUTH_FAILURE_LIMIT",
				"HSRCPAY_VALIDATE_RESPONSES", "HSRCPAY_USAGE_FLUSH_INTERVAL", "HSRCPAY_TRUST_PROXY",
				"HSRCPAY_LOG_LEVEL", "HSRCPAY_SHUTDOWN_TIMEOUT", "HSRCPAY_JWT_MAX_LIFETIME":
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
