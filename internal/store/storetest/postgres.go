package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment variables of the PostgreSQL tests.
const (
	// EnvPostgresURL names an admin URL: a role that may CREATE DATABASE.
	EnvPostgresURL = "HSRCPAY_TEST_POSTGRES_URL"
	// EnvRequirePostgres=1 turns "PostgreSQL not reachable" from a skip into a failure (CI).
	EnvRequirePostgres = "HSRCPAY_REQUIRE_POSTGRES"
)

// DefaultPostgresURL is tried when EnvPostgresURL is unset, then the same
// with user root.
const DefaultPostgresURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var probe struct {
	sync.Mutex
	done bool
	url  string // the first candidate that answered
	err  error  // why none answered
	// tried is what the skip message names.
	tried string
}

// PostgresURL returns the admin URL of a reachable PostgreSQL server, from
// HSRCPAY_TEST_POSTGRES_URL or the default. If none answers, it skips the test
// with a message, or fails it when HSRCPAY_REQUIRE_POSTGRES=1. The probe runs
// once per test binary.
func PostgresURL(t testing.TB) string {
	t.Helper()
	probe.Lock()
	if !probe.done {
		probe.url, probe.tried, probe.err = findPostgres()
		probe.done = true
	}
	u, tried, err := probe.url, probe.tried, probe.err
	probe.Unlock()
	if err == nil {
		return u
	}
	if os.Getenv(EnvRequirePostgres) == "1" {
		t.Fatalf("PostgreSQL not reachable at %s (%v) and %s=1: failing (set %s)",
			tried, err, EnvRequirePostgres, EnvPostgresURL)
	}
	t.Skipf("PostgreSQL not reachable at %s (%v): skipping PostgreSQL store tests (set %s)",
		tried, err, EnvPostgresURL)
	return ""
}

func findPostgres() (found, tried string, err error) {
	candidates := []string{os.Getenv(EnvPostgresURL)}
	if candidates[0] == "" {
		candidates = []string{DefaultPostgresURL, strings.Replace(DefaultPostgresURL, "//postgres@", "//root@", 1)}
	}
	var names []string
	for _, c := range candidates {
		names = append(names, redact(c))
		if err = ping(c); err == nil {
			return c, "", nil
		}
	}
	return "", strings.Join(names, " or "), err
}

func ping(u string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }() // a probe: Ping's answer is the result
	return conn.Ping(ctx)
}

// FreshPostgresDB creates an empty, uniquely named database (hsrcpay_t_<hex>)
// on the PostgresURL server, drops it when the test ends, and returns its URL.
// It skips or fails as PostgresURL does when the server is unreachable.
func FreshPostgresDB(t testing.TB) string {
	t.Helper()
	return freshDB(t, "")
}

var icuLocaleRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// FreshPostgresDBICU is FreshPostgresDB with an ICU locale (such as "en") as
// the database's default collation, under which text does not order
// bytewise ("key_a" < "key_B"): a store's orders must not depend on it.
func FreshPostgresDBICU(t testing.TB, locale string) string {
	t.Helper()
	if !icuLocaleRE.MatchString(locale) {
		t.Fatalf("storetest: ICU locale %q", locale)
	}
	return freshDB(t, ` TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '`+locale+`'`)
}

func freshDB(t testing.TB, options string) string {
	t.Helper()
	admin := PostgresURL(t)
	name := "hsrcpay_t_" + randomHex(8)
	if err := adminExec(admin, `CREATE DATABASE `+name+options); err != nil {
		t.Fatalf("storetest: create database %s on %s: %v", name, redact(admin), err)
	}
	// Registered first, so it runs after cleanups the test adds later (such
	// as closing the store); FORCE ends any connection still open.
	t.Cleanup(func() {
		if err := adminExec(admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	u, err := withDatabase(admin, name)
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	return u
}

func adminExec(admin, sql string) error {
	// Not t.Context(): it is already cancelled when cleanups run.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close(ctx) }() // a one-statement session: Exec's answer is the result
	_, err = conn.Exec(ctx, sql)
	return err
}

// withDatabase returns the connection string s pointing at database name.
func withDatabase(s, name string) (string, error) {
	if _, err := pgx.ParseConfig(s); err != nil {
		return "", err
	}
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		u, err := url.Parse(s)
		if err != nil {
			return "", err
		}
		u.Path, u.RawPath = "/"+name, ""
		return u.String(), nil
	}
	return s + " dbname=" + name, nil // key=value form: the last setting wins
}

func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.Scheme != "" {
		return u.Redacted()
	}
	return passwordRE.ReplaceAllString(s, "password=xxxxx")
}

var passwordRE = regexp.MustCompile(`password=('(\\.|[^'])*'|\S+)`)

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error (Go 1.24+: it crashes instead)
	return hex.EncodeToString(b)
}
