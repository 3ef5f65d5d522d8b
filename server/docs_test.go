package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// docsGet fetches root+path with method and optional extra headers.
func docsGet(t *testing.T, method, url string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to its end, or failed reading: nothing left to report
	if err != nil {
		t.Fatal(err)
	}
	return res, body
}

func docsWant(t *testing.T, res *http.Response, status int, contentType string) {
	t.Helper()
	if res.StatusCode != status {
		t.Fatalf("%s: status %d, want %d", res.Request.URL.Path, res.StatusCode, status)
	}
	if got := res.Header.Get("Content-Type"); contentType != "" && got != contentType {
		t.Fatalf("%s: Content-Type %q, want %q", res.Request.URL.Path, got, contentType)
	}
	if got := res.Header.Get("X-Content-Type-Options"); status == 200 && got != "nosniff" {
		t.Fatalf("%s: X-Content-Type-Options %q", res.Request.URL.Path, got)
	}
}

// canonicalSpec is a document's JSON form, for comparing two loads.
func canonicalSpec(t *testing.T, doc *openapi3.T) string {
	t.Helper()
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func loadServedSpec(t *testing.T, body []byte) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(body)
	if err != nil {
		t.Fatalf("served spec does not load: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("served spec is not valid: %v", err)
	}
	return doc
}

// TestDocsSpecServed: /openapi.json and /openapi.yaml are the embedded spec
// (and so openapi.yaml itself), need no token, and revalidate by ETag.
func TestDocsSpecServed(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	embedded, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := canonicalSpec(t, embedded)
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fileDoc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ path, contentType string }{
		{"/openapi.json", "application/json"},
		{"/openapi.yaml", "application/yaml"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			res, body := docsGet(t, http.MethodGet, env.Root+tc.path, nil) //nolint:bodyclose // docsGet reads and closes the body
			docsWant(t, res, http.StatusOK, tc.contentType)
			if tc.path == "/openapi.json" && !json.Valid(body) {
				t.Fatal("/openapi.json is not JSON")
			}
			if tc.path == "/openapi.yaml" && (json.Valid(body) || !strings.HasPrefix(string(body), "openapi: 3.0.")) {
				t.Fatalf("/openapi.yaml is not block YAML starting with the version:\n%.200s", body)
			}
			doc := loadServedSpec(t, body)
			if got := canonicalSpec(t, doc); got != want {
				t.Fatalf("%s differs from the embedded spec", tc.path)
			}
			if got := canonicalSpec(t, doc); got != canonicalSpec(t, fileDoc) {
				t.Fatalf("%s differs from ../openapi.yaml (run make generate?)", tc.path)
			}
			if len(doc.Servers) == 0 || !strings.HasPrefix(doc.Servers[0].URL, "https://") {
				t.Fatalf("%s: servers %v: want the spec's own, not the router's copy", tc.path, doc.Servers)
			}
			if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("ETag") == "" {
				t.Fatalf("%s: cache headers %q / %q", tc.path, res.Header.Get("Cache-Control"), res.Header.Get("ETag"))
			}
			if res.Header.Get("Access-Control-Allow-Origin") != "*" {
				t.Fatalf("%s: no CORS header", tc.path)
			}
			res2, body2 := docsGet(t, http.MethodGet, env.Root+tc.path, map[string]string{"If-None-Match": res.Header.Get("ETag")}) //nolint:bodyclose // docsGet reads and closes the body
			if res2.StatusCode != http.StatusNotModified || len(body2) != 0 {
				t.Fatalf("%s with If-None-Match: %d, %d bytes; want 304, empty", tc.path, res2.StatusCode, len(body2))
			}
		})
	}
}

// TestDocsPage: /docs is an HTML page that loads only the local bundle and
// spec, under a CSP that forbids everything else.
func TestDocsPage(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	res, body := docsGet(t, http.MethodGet, env.Root+"/docs", nil) //nolint:bodyclose // docsGet reads and closes the body
	docsWant(t, res, http.StatusOK, "text/html; charset=utf-8")
	page := string(body)
	for _, want := range []string{
		`<script src="/docs/redoc.standalone.js"></script>`,
		`spec-url="/openapi.json"`,
		"<title>HSRCPAY API keys — API reference</title>",
		`href="/openapi.yaml"`, // the <noscript> fallback
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/docs lacks %s", want)
		}
	}
	if strings.Contains(page, "://") {
		t.Errorf("/docs references another origin:\n%s", page)
	}
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "connect-src 'self'", "worker-src blob:", "style-src 'self' 'unsafe-inline'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "http") {
		t.Errorf("CSP %q allows eval or another origin", csp)
	}
	if res.Header.Get("Cache-Control") != "no-cache" || res.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("headers: %v", res.Header)
	}

	res, _ = docsGet(t, http.MethodGet, env.Root+"/docs/", nil) //nolint:bodyclose // docsGet reads and closes the body
	if res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/docs" {
		t.Errorf("/docs/: %d to %q, want 301 to /docs", res.StatusCode, res.Header.Get("Location"))
	}
}

// TestDocsBundle: the Redoc bundle is served as JavaScript, byte for byte
// the committed file, cacheable, and HEAD works.
func TestDocsBundle(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	want, err := os.ReadFile("docsassets/redoc.standalone.js")
	if err != nil {
		t.Fatal(err)
	}
	res, body := docsGet(t, http.MethodGet, env.Root+"/docs/redoc.standalone.js", nil) //nolint:bodyclose // docsGet reads and closes the body
	docsWant(t, res, http.StatusOK, "text/javascript; charset=utf-8")
	if !bytes.Equal(body, want) {
		t.Fatalf("bundle: %d bytes served, %d in docsassets/", len(body), len(want))
	}
	if cc := res.Header.Get("Cache-Control"); !strings.Contains(cc, "max-age=") || res.Header.Get("ETag") == "" {
		t.Fatalf("bundle cache headers: %q / %q", cc, res.Header.Get("ETag"))
	}
	res, body = docsGet(t, http.MethodHead, env.Root+"/docs/redoc.standalone.js", nil) //nolint:bodyclose // docsGet reads and closes the body
	docsWant(t, res, http.StatusOK, "text/javascript; charset=utf-8")
	if len(body) != 0 || res.ContentLength != int64(len(want)) {
		t.Fatalf("HEAD: %d body bytes, Content-Length %d", len(body), res.ContentLength)
	}
	// Nothing else under /docs is served (no directory listing, no source map).
	res, _ = docsGet(t, http.MethodGet, env.Root+"/docs/redoc.standalone.js.map", nil) //nolint:bodyclose // docsGet reads and closes the body
	if res.StatusCode != http.StatusNotFound {
		t.Fatalf("/docs/redoc.standalone.js.map: %d, want 404", res.StatusCode)
	}
}
