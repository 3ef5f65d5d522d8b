package server

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	yaml "github.com/oasdiff/yaml3"

	"github.com/hsrcpay/apikeys/gen/api"
)

// The API reference served by the binary itself, with no network access:
//
//	GET /openapi.json              the spec compiled into gen/api, as JSON
//	GET /openapi.yaml              the same document as YAML
//	GET /docs                      an HTML page rendering it with Redoc
//	GET /docs/redoc.standalone.js  the Redoc bundle, embedded below
//
// The bundle is redoc@2.5.4's bundles/redoc.standalone.js from npm, unchanged
// (.ci/docs/fetch-redoc.sh refreshes it; licenses are beside it).

// RedocVersion is the version of the embedded Redoc bundle.
const RedocVersion = "2.5.4"

//go:embed docsassets/redoc.standalone.js
var redocBundle []byte

// docsCSP lets the page load only what this server serves. Redoc needs
// inline styles (styled-components) and a search worker started from a
// blob: URL; everything else, including the Redocly logo it would fetch from
// a CDN, is refused.
const docsCSP = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; font-src 'self' data:; connect-src 'self'; worker-src blob:; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// docFile is one served document with its validator.
type docFile struct {
	body        []byte
	contentType string
	etag        string
}

func newDocFile(body []byte, contentType string) docFile {
	sum := sha256.Sum256(body)
	return docFile{body: body, contentType: contentType, etag: `"` + hex.EncodeToString(sum[:16]) + `"`}
}

type docFiles struct {
	json, yaml, page, bundle docFile
}

// loadDocs renders the documents once per process: the spec is the same for
// every server, and tests start many.
var loadDocs = sync.OnceValues(func() (*docFiles, error) {
	doc, err := api.GetSpec()
	if err != nil {
		return nil, fmt.Errorf("embedded spec: %w", err)
	}
	compact, err := doc.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("spec to JSON: %w", err)
	}
	var indented bytes.Buffer
	if err := json.Indent(&indented, compact, "", "  "); err != nil {
		return nil, fmt.Errorf("spec to JSON: %w", err)
	}
	indented.WriteByte('\n')
	y, err := jsonToYAML(compact)
	if err != nil {
		return nil, fmt.Errorf("spec to YAML: %w", err)
	}
	return &docFiles{
		json:   newDocFile(indented.Bytes(), "application/json"),
		yaml:   newDocFile(y, "application/yaml"),
		page:   newDocFile([]byte(fmt.Sprintf(docsPage, html.EscapeString(doc.Info.Title))), "text/html; charset=utf-8"),
		bundle: newDocFile(redocBundle, "text/javascript; charset=utf-8"),
	}, nil
})

// topLevelOrder is the conventional order of an OpenAPI document's keys;
// JSON from kin-openapi has them sorted alphabetically.
var topLevelOrder = []string{"openapi", "info", "servers", "security", "tags", "paths", "components", "externalDocs"}

// jsonToYAML re-encodes a JSON document as block-style YAML, keeping the
// JSON's key order except at the top level, which follows topLevelOrder.
func jsonToYAML(js []byte) ([]byte, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(js, &root); err != nil {
		return nil, err
	}
	if root.Kind != yaml.DocumentNode || len(root.Content) != 1 || root.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("not a JSON object")
	}
	restyle(&root)
	top := root.Content[0]
	rank := func(key string) int {
		for i, k := range topLevelOrder {
			if k == key {
				return i
			}
		}
		return len(topLevelOrder) // extensions and unknown keys last, in JSON order
	}
	pairs := make([][2]*yaml.Node, 0, len(top.Content)/2)
	for i := 0; i+1 < len(top.Content); i += 2 {
		pairs = append(pairs, [2]*yaml.Node{top.Content[i], top.Content[i+1]})
	}
	for i := 1; i < len(pairs); i++ { // stable insertion sort; a dozen keys
		for j := i; j > 0 && rank(pairs[j][0].Value) < rank(pairs[j-1][0].Value); j-- {
			pairs[j], pairs[j-1] = pairs[j-1], pairs[j]
		}
	}
	top.Content = top.Content[:0]
	for _, p := range pairs {
		top.Content = append(top.Content, p[0], p[1])
	}
	var out bytes.Buffer
	enc := yaml.NewEncoder(&out)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// restyle drops the JSON styling (quotes, flow collections) so the encoder
// picks YAML's own: plain scalars, quoted only where needed, literal blocks
// for multi-line text. Lists of scalars stay on one line, as in openapi.yaml.
func restyle(n *yaml.Node) {
	n.Style = 0
	scalarsOnly := n.Kind == yaml.SequenceNode && len(n.Content) > 0
	for _, c := range n.Content {
		restyle(c)
		if c.Kind != yaml.ScalarNode || bytes.ContainsRune([]byte(c.Value), '\n') {
			scalarsOnly = false
		}
	}
	if scalarsOnly {
		n.Style = yaml.FlowStyle
	}
}

// docsPage is the HTML of /docs; %s is the API's title, escaped. Redoc
// starts itself from the <redoc> element's spec-url; no inline script.
const docsPage = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>%[1]s — API reference</title>
<link rel="icon" href="data:,">
<style>body { margin: 0; padding: 0; }</style>
</head>
<body>
<noscript>This page renders the API reference with JavaScript. The specification itself:
<a href="/openapi.yaml">openapi.yaml</a>, <a href="/openapi.json">openapi.json</a>.</noscript>
<redoc spec-url="/openapi.json" path-in-middle-panel="true" required-props-first="true"></redoc>
<script src="/docs/redoc.standalone.js"></script>
</body>
</html>
`

// registerDocs serves the spec and its rendered reference outside /v1,
// without authentication. GET and HEAD; ETag and If-None-Match work.
func (s *Server) registerDocs(e *echo.Echo) {
	methods := []string{http.MethodGet, http.MethodHead}
	serve := func(pick func(*docFiles) docFile, cacheControl string, extra map[string]string) echo.HandlerFunc {
		return func(c echo.Context) error {
			files, err := loadDocs()
			if err != nil {
				return err // a 500 in the envelope, logged by renderError
			}
			f := pick(files)
			h := c.Response().Header()
			h.Set(echo.HeaderContentType, f.contentType)
			h.Set("Cache-Control", cacheControl)
			h.Set("ETag", f.etag)
			h.Set("X-Content-Type-Options", "nosniff")
			for k, v := range extra {
				h.Set(k, v)
			}
			// ServeContent answers HEAD, If-None-Match (304) and ranges.
			http.ServeContent(c.Response(), c.Request(), "", time.Time{}, bytes.NewReader(f.body))
			return nil
		}
	}
	// The spec is public and holds no secrets: other origins (editors,
	// code generators in a browser) may read it.
	specHeaders := map[string]string{"Access-Control-Allow-Origin": "*"}
	pageHeaders := map[string]string{
		"Content-Security-Policy": docsCSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	// no-cache: always revalidate (cheap with the ETag), so a deploy with a
	// new spec shows at once. The bundle changes only with RedocVersion.
	e.Match(methods, "/openapi.json", serve(func(d *docFiles) docFile { return d.json }, "no-cache", specHeaders))
	e.Match(methods, "/openapi.yaml", serve(func(d *docFiles) docFile { return d.yaml }, "no-cache", specHeaders))
	e.Match(methods, "/docs", serve(func(d *docFiles) docFile { return d.page }, "no-cache", pageHeaders))
	e.Match(methods, "/docs/redoc.standalone.js", serve(func(d *docFiles) docFile { return d.bundle }, "public, max-age=86400", nil))
	e.Match(methods, "/docs/", func(c echo.Context) error { return c.Redirect(http.StatusMovedPermanently, "/docs") })
}
