package redact_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/redact"
)

// A JWT as golang-jwt writes one (ES256 header, a payload, an 86-character signature).
const jwtTok = "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9." +
	"eyJzdWIiOiJvcHNAZXhhbXBsZS5jb20iLCJhY2NvdW50cyI6WyJhY2N0XzEiXX0." +
	"MEUCIQDx7Vb2cPq1ZkLr0aT9sYhN4u8WmE3oFjKx6dGtR5iB0wIgS2pXcH7nQ1vL9aYbT3mZ0oFdKj4uEwR8sNcV6yGhP"

func mustKey(t *testing.T, kind keys.Kind, sandbox bool) string {
	t.Helper()
	k, err := keys.New(kind, sandbox)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// encodings are ways a client (or a proxy) may spell the same token in a URL.
func encodings(tok string) map[string]string {
	out := map[string]string{
		"raw":                  tok,
		"underscores %5F":      strings.ReplaceAll(tok, "_", "%5F"),
		"underscores %5f":      strings.ReplaceAll(tok, "_", "%5f"),
		"underscores %255F":    strings.ReplaceAll(tok, "_", "%255F"),
		"underscores %25255F":  strings.ReplaceAll(tok, "_", "%25255F"),
		"dots %2E":             strings.ReplaceAll(tok, ".", "%2E"),
		"dots %252e":           strings.ReplaceAll(tok, ".", "%252e"),
		"every byte escaped":   escapeAll(tok),
		"query-escaped":        url.QueryEscape(tok),
		"path-escaped twice":   url.PathEscape(url.PathEscape(tok)),
		"first letters %73%6B": "%" + fmt.Sprintf("%02X", tok[0]) + "%" + fmt.Sprintf("%02X", tok[1]) + tok[2:],
	}
	return out
}

func escapeAll(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		fmt.Fprintf(&b, "%%%02X", s[i])
	}
	return b.String()
}

// unescapeAll decodes percent escapes until nothing changes, so a needle is
// found however many times its log line encoded it.
func unescapeAll(s string) string {
	for range 8 {
		u, err := url.PathUnescape(s)
		if err != nil || u == s {
			break
		}
		s = u
	}
	return s
}

// needles of a token: itself and its distinctive random part.
func needles(tok string) []string {
	if keys.Classify(tok) == keys.KindJWT {
		parts := strings.Split(tok, ".")
		return []string{tok, parts[1], parts[2]}
	}
	return []string{tok, tok[8:40], tok[20:36]}
}

func TestStringRemovesTokensAnywhere(t *testing.T) {
	toks := map[string]string{
		"live secret":      mustKey(t, keys.KindSecret, false),
		"test secret":      mustKey(t, keys.KindSecret, true),
		"live publishable": mustKey(t, keys.KindPublishable, false),
		"test publishable": mustKey(t, keys.KindPublishable, true),
		"JWT":              jwtTok,
		"JWT, alg none":    "eyJhbGciOiJub25lIn0.e30.",
		"JWT, no eyJ":      "ewogICJhbGciOiAiRVMyNTYiCn0.ewogICJzdWIiOiAib3BzIgp9.c2lnbmF0dXJlLWJ5dGVzLWhlcmUtMDEyMzQ1Njc4OQ",
	}
	frames := []string{
		"%s",
		"/v1/%s",
		"/v1/x-%s",
		"/v1/api-keys/foo.%s/regenerate",
		"/v1/api-keys/%s.json",
		"/v1/nope/abc%sdef/",
		"/v1/api-keys/?account_id=acct_1&api_key=%s&x=1",
		"token=%s",
		"Bearer %s",
		`{"data":{"key":"%s"}}`,
		"response violates openapi.yaml: Value: \"%s\"",
		"key %s, again %[1]s",
	}
	for what, tok := range toks {
		for enc, spelled := range encodings(tok) {
			for _, frame := range frames {
				in := fmt.Sprintf(frame, spelled)
				out := redact.String(in)
				for _, n := range needles(tok) {
					if n == "" || len(n) < 3 {
						continue
					}
					if strings.Contains(out, n) || strings.Contains(unescapeAll(out), n) {
						t.Errorf("%s (%s) in %q: %q keeps %q", what, enc, frame, out, n)
					}
				}
				if !strings.Contains(out, redact.Marker) {
					t.Errorf("%s (%s) in %q: no marker in %q", what, enc, frame, out)
				}
				if again := redact.String(out); again != out {
					t.Errorf("not idempotent: %q → %q", out, again)
				}
			}
		}
	}
}

func TestStringKeepsOrdinaryText(t *testing.T) {
	for _, s := range []string{
		"",
		"/v1/api-keys/",
		"/v1/api-keys/{id}/regenerate",
		"/v1/api-keys/key_4f9GkQ2mZx8RtY1uVwB3nL0a/regenerate",
		"/docs/redoc.standalone.js",
		"/openapi.yaml",
		"createApiKey",
		"req_0123456789abcdef01234567",
		"127.0.0.1",
		"2001:db8::1",
		"acct_demo",
		"v1.25.0",
		"github.com/hsrcpay/apikeys",
		"store: not found",
		"100% done",
		"%zz",
		"response violates openapi.yaml (status 201)",
	} {
		if got := redact.String(s); got != s {
			t.Errorf("redact.String(%q) = %q, want it unchanged", s, got)
		}
	}
}

func TestStringShapes(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"/v1/sk_test_abc", "/v1/{redacted}"},
		{"/v1/x-sk_live_abc/y", "/v1/x-{redacted}/y"},
		{"/v1/sk%5Ftest%5Fabc/y", "/v1/{redacted}/y"},
		{"a pk_ b", "a pk_ b"}, // a prefix alone carries nothing
		{"/v1/a.eyJhbGciOiJub25lIn0.e30./z", "/v1/{redacted}/z"},
		{"sk_a sk_b", "{redacted} {redacted}"},
		{"eyJhbGciOiJub25lIn0.sk_live_abc.sig", "{redacted}"},
	} {
		if got := redact.String(c.in); got != c.want {
			t.Errorf("redact.String(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestHandlerScrubsEveryString(t *testing.T) {
	sk := mustKey(t, keys.KindSecret, true)
	var buf bytes.Buffer
	log := slog.New(redact.Handler(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	log = log.With("bound", "with "+sk).WithGroup("g")
	log.Error("message "+sk,
		"path", "/v1/x-"+sk,
		"err", fmt.Errorf("wrapped: %w", errors.New("inner "+jwtTok)),
		"stringer", url.URL{Path: "/v1/" + sk},
		"bytes", []byte("b "+sk),
		"map", map[string]string{"key": sk},
		"nested", slog.GroupValue(slog.String("deep", sk)),
		"count", 3,
	)
	out := buf.String()
	for _, n := range append(needles(sk), needles(jwtTok)...) {
		if strings.Contains(out, n) {
			t.Errorf("log line keeps %q: %s", n, out)
		}
	}
	for _, want := range []string{`"count":3`, `"g":{`, `"bound":"with {redacted}"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
}

func BenchmarkStringAccessLogPath(b *testing.B) {
	for b.Loop() {
		_ = redact.String("/v1/api-keys/key_4f9GkQ2mZx8RtY1uVwB3nL0a/regenerate")
	}
}

// BenchmarkHandlerAccessLog is one access-log record (the server's
// attributes) through the sanitizer into a JSON handler, beside the JSON
// handler alone: the difference is what the sanitizer costs per record.
func BenchmarkHandlerAccessLog(b *testing.B) {
	logRecord := func(log *slog.Logger) {
		log.Info("request", "request_id", "req_0123456789abcdef01234567", "method", "POST",
			"path", "/v1/api-keys/{id}/regenerate", "status", 401, "duration_ms", 0.123,
			"client_ip", "127.0.0.1", "operation", "regenerateApiKey", "auth_failure", "checksum")
	}
	b.Run("json", func(b *testing.B) {
		log := slog.New(slog.NewJSONHandler(io.Discard, nil))
		b.ReportAllocs()
		for b.Loop() {
			logRecord(log)
		}
	})
	b.Run("redact+json", func(b *testing.B) {
		log := slog.New(redact.Handler(slog.NewJSONHandler(io.Discard, nil)))
		b.ReportAllocs()
		for b.Loop() {
			logRecord(log)
		}
	})
}
