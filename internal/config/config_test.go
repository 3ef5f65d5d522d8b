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
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != "sqlite:./data" || c.RateLimitLive != 100 || !c.ValidateResponses {
		t.Fatalf("%+v", c)
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
		"HSRCPAY_DATABASE_URL":         {"HSRCPAY_DATABASE_URL": "mysql://x"},
		"HSRCPAY_RATE_LIMIT_LIVE":      {"HSRCPAY_RATE_LIMIT_LIVE": "0"},
		"HSRCPAY_VALIDATE_RESPONSES":   {"HSRCPAY_VALIDATE_RESPONSES": "maybe"},
		"HSRCPAY_USAGE_FLUSH_INTERVAL": {"HSRCPAY_USAGE_FLUSH_INTERVAL": "soon"},
		"HSRCPAY_LOG_LEVEL":            {"HSRCPAY_LOG_LEVEL": "loud"},
		"HSRCPAY_JWT_ISSUER":           {"HSRCPAY_JWT_JWKS_URL": "https://auth.example/jwks.json"},
		"HSRCPAY_JWT_JWKS_URL":         {"HSRCPAY_JWT_JWKS_URL": "ftp://x", "HSRCPAY_JWT_ISSUER": "i", "HSRCPAY_JWT_AUDIENCE": "a"},
		"HSRCPAY_DEMO_ACCOUNT":         {"HSRCPAY_DEMO_ACCOUNT": "bad id!"},
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
			case "HSRCPAY_ADDR", "HSRCPAY_DATABASE_URL", "HSRCPAY_RATE_LIMIT_LIVE", "HSRCPAY_RATE_LIMIT_TEST",
				"HSRCPAY_VALIDATE_RESPONSES", "HSRCPAY_USAGE_FLUSH_INTERVAL", "HSRCPAY_TRUST_PROXY",
				"HSRCPAY_LOG_LEVEL", "HSRCPAY_SHUTDOWN_TIMEOUT":
				t.Errorf("%s accepted a garbage value", v.Name)
			}
		}
	}
}
