package server_test

// Contract fuzzing: rapid generates requests for both operations from
// openapi.yaml's schemas, valid and deliberately broken, sends them over HTTP
// to one real server, and checks every response against the spec (loaded from
// disk here, independently of the server's own copy and validation) and
// against a model of what the server must answer. Afterwards the SQLite files
// are read directly to check the store's invariants.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/text/unicode/norm"
	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// ---------------------------------------------------------------------------
// Helpers shared by this package's robustness tests (contract fuzzing,
// hostile input, faults, secrets in logs). Prefixed "hx" to keep clear of
// other test files in the package.

// hxSpec is openapi.yaml read from disk: independent of the copy compiled
// into the server, so a drift between the two shows up as a failure here.
type hxSpec struct {
	doc     *openapi3.T
	routes  map[string]*routers.Route // by operationId
	catalog perm.Catalog
	need    map[string]string // operationId → permission
}

const (
	hxOpCreate     = "createApiKey"
	hxOpRegenerate = "regenerateApiKey"
)

func hxLoadSpec(t testing.TB) *hxSpec {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile("../openapi.yaml")
	if err != nil {
		t.Fatalf("load openapi.yaml: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.yaml is invalid: %v", err)
	}
	s := &hxSpec{doc: doc, routes: map[string]*routers.Route{}}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			s.routes[op.OperationID] = &routers.Route{Spec: doc, Path: path, PathItem: item, Method: method, Operation: op}
		}
	}
	if s.routes[hxOpCreate] == nil || s.routes[hxOpRegenerate] == nil {
		t.Fatalf("openapi.yaml lacks %s or %s", hxOpCreate, hxOpRegenerate)
	}
	if s.catalog, err = perm.LoadCatalog(doc); err != nil {
		t.Fatal(err)
	}
	if s.need, err = perm.OperationPermissions(doc); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *hxSpec) schema(name string) *openapi3.Schema {
	return s.doc.Components.Schemas[name].Value
}

// allowed reports whether the spec documents status for the operation.
func (s *hxSpec) allowed(op string, status int) bool {
	return s.routes[op].Operation.Responses.Status(status) != nil
}

// hxEnvelope is the error envelope as the spec defines it.
type hxEnvelope struct {
	Message *string `json:"message"`
	Success *bool   `json:"success"`
	Error   *struct {
		Code    int            `json:"code"`
		Message string         `json:"message"`
		Details map[string]any `json:"details"`
	} `json:"error"`
}

var hxRequestIDRe = regexp.MustCompile(`^req_[0-9a-f]{24}$`)

// hxCheckEnvelope checks an error response: JSON, the envelope with a code
// whose first three digits are the status, and details.request_id equal to
// the X-Request-Id header. It returns the code.
func hxCheckEnvelope(res *http.Response, body []byte) (int, error) {
	rid := res.Header.Get("X-Request-Id")
	if !hxRequestIDRe.MatchString(rid) {
		return 0, fmt.Errorf("X-Request-Id %q is not a request id", rid)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		return 0, fmt.Errorf("error with Content-Type %q: %.200q", ct, body)
	}
	var env hxEnvelope
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&env); err != nil {
		return 0, fmt.Errorf("error body is not JSON (%w): %.200q", err, body)
	}
	if dec.More() {
		return 0, fmt.Errorf("trailing data after the envelope: %.200q", body)
	}
	switch {
	case env.Message == nil || env.Success == nil || env.Error == nil:
		return 0, fmt.Errorf("not the envelope: %.300s", body)
	case *env.Success:
		return 0, fmt.Errorf("error envelope with success=true: %.300s", body)
	case env.Error.Code/100 != res.StatusCode:
		return 0, fmt.Errorf("code %d does not start with status %d", env.Error.Code, res.StatusCode)
	case env.Error.Message == "" || *env.Message == "":
		return 0, fmt.Errorf("envelope without message: %.300s", body)
	}
	if got, _ := env.Error.Details["request_id"].(string); got != rid {
		return 0, fmt.Errorf("details.request_id %q != X-Request-Id %q", got, rid)
	}
	if res.StatusCode == http.StatusUnauthorized && res.Header.Get("WWW-Authenticate") == "" {
		return 0, fmt.Errorf("401 without WWW-Authenticate")
	}
	return env.Error.Code, nil
}

// hxCheckResponse checks any response of an operation: a documented status,
// never 5xx, valid against the spec (status, headers, body), and for errors
// the envelope. It returns the error code (0 for success).
func (s *hxSpec) hxCheckResponse(op string, req *http.Request, res *http.Response, body []byte) (int, error) {
	if res.StatusCode >= 500 {
		return 0, fmt.Errorf("server error %d: %.300s", res.StatusCode, body)
	}
	if !s.allowed(op, res.StatusCode) {
		return 0, fmt.Errorf("status %d is not documented for %s", res.StatusCode, op)
	}
	route := s.routes[op]
	probe := req.Clone(context.Background())
	probe.Method = route.Method
	err := openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, Route: route},
		Status:                 res.StatusCode,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		return 0, fmt.Errorf("response violates openapi.yaml: %w\nbody: %.500s", err, body)
	}
	if res.StatusCode < 300 {
		if !hxRequestIDRe.MatchString(res.Header.Get("X-Request-Id")) {
			return 0, fmt.Errorf("success without a request id")
		}
		return 0, nil
	}
	return hxCheckEnvelope(res, body)
}

// hxDo sends req and reads the whole answer.
func hxDo(t testing.TB, c *http.Client, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	res, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to its end, or failed reading: nothing left to report
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", req.Method, req.URL, err)
	}
	return res, body
}

// hxCountKeys counts api_keys rows in a mode's SQLite file, optionally for one account.
func hxCountKeys(t testing.TB, st store.Store, mode apikey.Mode, account string) int {
	t.Helper()
	db := st.(*sqlite.Store).DB(mode)
	var n int
	var err error
	if account == "" {
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&n)
	} else {
		err = db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE account_id = ?`, account).Scan(&n)
	}
	if err != nil {
		t.Fatalf("count keys: %v", err)
	}
	return n
}

// hxKeyIDForSecret returns the id of the key whose current secret hash is
// that of secret, reading the SQLite file directly ("" if none).
func hxKeyIDForSecret(t testing.TB, st store.Store, mode apikey.Mode, secret string) string {
	t.Helper()
	sum := sha256.Sum256([]byte(secret))
	var id string
	err := st.(*sqlite.Store).DB(mode).QueryRowContext(ctx, `SELECT id FROM api_keys WHERE secret_hash = ?`, sum[:]).Scan(&id)
	if err != nil && !strings.Contains(err.Error(), "no rows") {
		t.Fatalf("lookup by hash: %v", err)
	}
	return id
}

// hxHashRefs counts the rows whose current or previous secret hash is that of secret.
func hxHashRefs(t testing.TB, st store.Store, mode apikey.Mode, secret string) int {
	t.Helper()
	sum := sha256.Sum256([]byte(secret))
	var n int
	if err := st.(*sqlite.Store).DB(mode).QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE secret_hash = ? OR prev_secret_hash = ?`, sum[:], sum[:]).Scan(&n); err != nil {
		t.Fatalf("lookup by hash: %v", err)
	}
	return n
}

// hxScanFiles fails if any of the needles occurs in any of the files.
func hxScanFiles(t testing.TB, files []string, needles map[string]string) {
	t.Helper()
	for _, f := range files {
		data, err := os.ReadFile(f) //nolint:gosec // the files this test's servers wrote (stores, logs)
		if err != nil {
			t.Fatal(err)
		}
		for n, what := range needles {
			if bytes.Contains(data, []byte(n)) {
				t.Errorf("%s found in %s", what, f)
			}
		}
	}
}

// hxSecretNeedles are a key and its 32-character random part.
func hxSecretNeedles(m map[string]string, secret, what string) {
	m[secret] = what
	if len(secret) >= 40 {
		m[secret[8:40]] = what + " (random part)"
	}
}

// ---------------------------------------------------------------------------
// The model.

const (
	cfAcctA     = "acct_cf_a"
	cfAcctB     = "acct_cf_b"
	cfAcctGhost = "acct_cf_ghost" // never bootstrapped
)

type cfKey struct {
	mode    apikey.Mode
	account string
	id      string
	typ     string
	managed bool
	perms   map[string][]string
	expires *time.Time // nil: never
	secret  string     // latest acknowledged secret
	old     []string   // acknowledged secrets since replaced by regenerate
	// prev is the replaced secret still working in a rotation's grace
	// period, until prevUntil ("" when none); it is also in old.
	prev      string
	prevUntil time.Time
}

// superseded lists the replaced secrets that must no longer work.
func (k *cfKey) superseded() []string {
	var out []string
	for _, s := range k.old {
		if s != k.prev {
			out = append(out, s)
		}
	}
	return out
}

// cfPrincipal is who the model expects a token to authenticate as.
type cfPrincipal struct {
	publishable bool
	mode        apikey.Mode
	accounts    []string
	perms       perm.Set
	// expires is a key credential's expiry (nil: never, and always for JWTs,
	// which the life rule exempts).
	expires *time.Time
	// replaced: the previous secret of a rotation, in its grace period.
	replaced bool
}

type cfToken struct {
	desc   string
	header string // Authorization value; "" sends none
	code   int    // expected authentication failure code, 0 if p is set
	p      *cfPrincipal
}

type cfModel struct {
	spec     *hxSpec
	env      *testenv.Env
	http     *http.Client
	keys     []*cfKey
	byID     map[string]*cfKey
	names    map[apikey.Mode]map[string]map[string]bool
	created  map[apikey.Mode]map[string]int
	otherJWT *ecdsa.PrivateKey
	jwts     []string // every JWT sent
	allPerms []string
	seq      int
	stats    map[string]int
}

func (m *cfModel) addKey(k *cfKey, name string) {
	m.keys = append(m.keys, k)
	m.byID[k.id] = k
	if m.names[k.mode][k.account] == nil {
		m.names[k.mode][k.account] = map[string]bool{}
	}
	// Names are unique as people see them (issue 17): by their name key.
	// Which names look alike is namekey's rule, held by its own tests.
	m.names[k.mode][k.account][namekey.Key(name)] = true
}

func (m *cfModel) pick(t *rapid.T, label string, ok func(*cfKey) bool) *cfKey {
	var c []*cfKey
	for _, k := range m.keys {
		if ok(k) {
			c = append(c, k)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return rapid.SampledFrom(c).Draw(t, label)
}

func cfModeName(m apikey.Mode) string {
	if m == apikey.Sandbox {
		return "test"
	}
	return "live"
}

// ---------------------------------------------------------------------------
// Generators driven by the spec's schemas.

// cfString draws a string valid for a string schema: its pattern, clamped to
// its length bounds (counted in characters, as JSON Schema does).
func cfString(t *rapid.T, s *openapi3.Schema, label string) string {
	var v string
	if s.Pattern != "" {
		v = rapid.StringMatching(s.Pattern).Draw(t, label)
	} else {
		v = rapid.StringN(0, 40, -1).Draw(t, label)
	}
	if s.MaxLength != nil && uint64(utf8.RuneCountInString(v)) > *s.MaxLength { //nolint:gosec // a count is never negative
		v = string([]rune(v)[:*s.MaxLength])
	}
	if uint64(utf8.RuneCountInString(v)) < s.MinLength || (s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(v)) { //nolint:gosec // a count is never negative
		if ex, ok := s.Example.(string); ok {
			return ex
		}
		return strings.Repeat("a", int(s.MinLength)) //nolint:gosec // openapi.yaml's minLengths are small
	}
	return v
}

func cfPermStrings(c perm.Catalog) []string {
	var out []string
	for res, acts := range c {
		for a := range acts {
			out = append(out, res+":"+a)
		}
	}
	sort.Strings(out)
	return out
}

// cfPermMap turns "res:action" strings into the request's map form.
func cfPermMap(list []string) map[string][]string {
	out := map[string][]string{}
	for _, p := range list {
		i := strings.LastIndex(p, ":")
		out[p[:i]] = append(out[p[:i]], p[i+1:])
	}
	return out
}

func cfSubset(t *rapid.T, from []string, label string) []string {
	if len(from) == 0 {
		return nil
	}
	return rapid.SliceOfNDistinct(rapid.SampledFrom(from), 0, len(from), rapid.ID[string]).Draw(t, label)
}

// ---------------------------------------------------------------------------
// Tokens.

func (m *cfModel) drawToken(t *rapid.T) cfToken {
	kind := rapid.SampledFrom([]string{
		"managed", "managed", "managed", "custom", "custom", "publishable", "superseded", "previous in grace",
		"garbage", "forged", "empty", "not bearer", "jwt", "jwt", "jwt expired", "jwt foreign signer",
	}).Draw(t, "token kind")
	switch kind {
	case "managed", "custom", "publishable":
		k := m.pick(t, "token key", func(k *cfKey) bool {
			switch kind {
			case "managed":
				return k.managed && k.typ == apikey.TypeSecret
			case "custom":
				return !k.managed
			}
			return k.typ == apikey.TypePublishable
		})
		if k == nil {
			break
		}
		p := &cfPrincipal{publishable: k.typ == apikey.TypePublishable, mode: k.mode, accounts: []string{k.account}, perms: perm.FromMap(k.perms), expires: k.expires}
		return cfToken{desc: fmt.Sprintf("%s key %s (%s, %s)", kind, k.id, k.account, k.mode), header: "Bearer " + k.secret, p: p}
	case "superseded":
		k := m.pick(t, "superseded key", func(k *cfKey) bool { return len(k.superseded()) > 0 })
		if k == nil {
			break
		}
		s := rapid.SampledFrom(k.superseded()).Draw(t, "superseded secret")
		return cfToken{desc: "superseded secret of " + k.id, header: "Bearer " + s, code: 40101}
	case "previous in grace":
		k := m.pick(t, "key in grace", func(k *cfKey) bool { return k.prev != "" && time.Now().Before(k.prevUntil) })
		if k == nil {
			break
		}
		p := &cfPrincipal{publishable: k.typ == apikey.TypePublishable, mode: k.mode, accounts: []string{k.account}, perms: perm.FromMap(k.perms), expires: k.expires, replaced: true}
		return cfToken{desc: "previous secret (in grace) of " + k.id, header: "Bearer " + k.prev, p: p}
	case "garbage":
		g := rapid.StringOfN(rapid.RuneFrom(cfPrintableASCII), 1, 80, -1).Draw(t, "garbage token")
		return cfToken{desc: "garbage", header: "Bearer " + g, code: 40101}
	case "forged":
		// A well-formed key with a valid checksum that was never issued.
		s, _ := keys.New(rapid.SampledFrom([]keys.Kind{keys.KindSecret, keys.KindPublishable}).Draw(t, "forged kind"), rapid.Bool().Draw(t, "forged sandbox"))
		return cfToken{desc: "forged well-formed key", header: "Bearer " + s, code: 40101}
	case "empty":
		return cfToken{desc: "no Authorization header", code: 40100}
	case "not bearer":
		k := m.pick(t, "key", func(k *cfKey) bool { return k.managed })
		h := rapid.SampledFrom([]string{"Basic " + k.secret, k.secret, "Bearer", "Token " + k.secret}).Draw(t, "not bearer")
		return cfToken{desc: "not a bearer header", header: h, code: 40101}
	case "jwt", "jwt expired", "jwt foreign signer":
		mode := rapid.SampledFrom([]apikey.Mode{apikey.Live, apikey.Sandbox}).Draw(t, "jwt mode")
		accounts := cfSubset(t, []string{cfAcctA, cfAcctB, cfAcctGhost}, "jwt accounts")
		perms := cfSubset(t, m.allPerms, "jwt permissions")
		if rapid.Bool().Draw(t, "jwt may manage keys") {
			perms = append(perms, "account:api:key:create", "account:api:key:update")
		}
		j := m.env.JWT
		c := j.Claims("cf-"+fmt.Sprint(m.seq), accounts, perms, cfModeName(mode))
		code := 0
		key := j.Key
		if kind == "jwt expired" {
			c.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
			code = 40102
		}
		if kind == "jwt foreign signer" {
			key, code = m.otherJWT, 40101
		}
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		m.jwts = append(m.jwts, s)
		tok := cfToken{desc: fmt.Sprintf("%s (%s, accounts %v, perms %v)", kind, mode, accounts, perms), header: "Bearer " + s, code: code}
		if code == 0 {
			tok.p = &cfPrincipal{mode: mode, accounts: accounts, perms: perm.FromList(perms)}
		}
		return tok
	}
	// The wanted kind does not exist yet: fall back to a managed secret key.
	k := m.pick(t, "fallback key", func(k *cfKey) bool { return k.managed && k.typ == apikey.TypeSecret })
	return cfToken{desc: "managed key " + k.id, header: "Bearer " + k.secret, p: &cfPrincipal{mode: k.mode, accounts: []string{k.account}, perms: perm.FromMap(k.perms)}}
}

// cfPrintableASCII is '!'..'~': no space, so the token stays one token.
var cfPrintableASCII = func() []rune {
	var out []rune
	for r := '!'; r <= '~'; r++ {
		out = append(out, r)
	}
	return out
}()

// ---------------------------------------------------------------------------
// Requests and the expected answer.

type cfRequest struct {
	op     string
	desc   []string
	method string
	path   string
	query  string
	ctype  string
	body   []byte
	token  cfToken
	// Where deliberate breaks are caught: query, ctype, decode, schema.
	stages  map[string]bool
	account string
	// create, when the body is well-formed:
	name     string
	perms    map[string][]string
	expires  *time.Time
	metadata map[string]string
	badMeta  bool // a metadata key the handler rejects
	// regenerate:
	id    string
	grace *int // minutes, when the body asks for a grace period
}

func (r *cfRequest) breakAt(stage string) {
	if r.stages == nil {
		r.stages = map[string]bool{}
	}
	r.stages[stage] = true
}

func (r *cfRequest) String() string {
	return fmt.Sprintf("%s %s?%s [%s] token=%s content-type=%q body=%.400s", r.method, r.path, r.query,
		strings.Join(r.desc, "; "), r.token.desc, r.ctype, r.body)
}

// expect is the status and code the server must answer (code 0: success).
func (m *cfModel) expect(r *cfRequest) (int, int) {
	if r.token.code != 0 {
		return r.token.code / 100, r.token.code
	}
	p := r.token.p
	if p.publishable {
		return 403, 40303
	}
	if p.replaced { // a replaced secret authenticates but manages nothing
		return 403, 40304
	}
	if !p.perms.Has(m.spec.need[r.op]) {
		return 403, 40300
	}
	// Unknown or repeated query parameters are refused before anything else;
	// a body of the wrong type or not JSON wins over field errors.
	switch {
	case r.stages["query"]:
		return 400, 40000
	case r.stages["ctype"]:
		return 415, 41500
	case r.stages["decode"]:
		return 400, 40001
	case r.stages["schema"]:
		return 400, 40000
	}
	if r.op == hxOpRegenerate {
		k := m.byID[r.id]
		if k == nil || k.mode != p.mode || !slices.Contains(p.accounts, k.account) {
			return 404, 40400
		}
		// Authorization before what tells the key's type.
		if len(p.perms.Missing(perm.FromMap(k.perms))) > 0 { // power never grows
			return 403, 40302
		}
		if p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) { // life never grows
			return 403, 40305
		}
		if !k.managed {
			return 422, 42201
		}
		return 200, 0
	}
	if !slices.Contains(p.accounts, r.account) {
		return 403, 40301
	}
	if r.badMeta || !cfNameForPeople(r.name) {
		return 400, 40000
	}
	if len(m.spec.catalog.Unknown(r.perms)) > 0 {
		return 422, 42200
	}
	if r.expires != nil && !r.expires.After(time.Now()) {
		return 422, 42202
	}
	if len(p.perms.Missing(perm.FromMap(r.perms))) > 0 {
		return 403, 40302
	}
	if p.expires != nil && (r.expires == nil || r.expires.After(*p.expires)) {
		return 422, 42203
	}
	if r.account != cfAcctA && r.account != cfAcctB {
		return 404, 40401
	}
	if m.names[p.mode][r.account][namekey.Key(r.name)] {
		return 409, 40900
	}
	return 201, 0
}

func (m *cfModel) drawCreate(t *rapid.T, tok cfToken) *cfRequest {
	r := &cfRequest{op: hxOpCreate, method: http.MethodPost, path: "/v1/api-keys/", ctype: "application/json", token: tok}
	// Account: mostly one the caller may act on.
	own := cfAcctA
	if tok.p != nil && len(tok.p.accounts) > 0 {
		own = rapid.SampledFrom(tok.p.accounts).Draw(t, "own account")
	}
	r.account = rapid.SampledFrom([]string{own, own, own, cfAcctA, cfAcctB, cfAcctGhost, ""}).Draw(t, "account")
	if r.account == "" {
		// Any id the AccountId schema allows; almost surely not an account.
		r.account = cfString(t, m.spec.schema("AccountId"), "schema account")
	}
	q := url.Values{"account_id": {r.account}}

	// A body valid for the schema.
	nameSchema := m.spec.schema("CreateApiKeyRequest").Properties["name"].Value
	m.seq++
	switch rapid.IntRange(0, 9).Draw(t, "name kind") {
	case 0, 1, 2, 3:
		r.name = fmt.Sprintf("cf %d %s", m.seq, rapid.StringMatching(`[a-z]{0,8}`).Draw(t, "name suffix"))
	case 4:
		r.name = rapid.SampledFrom([]string{"Managed secret key", "Managed publishable key", "cf dup"}).Draw(t, "taken name")
	default:
		r.name = cfString(t, nameSchema, "name")
	}
	switch rapid.IntRange(0, 9).Draw(t, "permissions kind") {
	case 0, 1, 2, 3, 4, 5:
		var held []string
		if tok.p != nil {
			for _, p := range m.allPerms {
				if tok.p.perms.Has(p) {
					held = append(held, p)
				}
			}
		}
		r.perms = cfPermMap(cfSubset(t, held, "held permissions"))
	case 6, 7, 8:
		r.perms = cfPermMap(cfSubset(t, m.allPerms, "catalog permissions"))
	default:
		// Anything the Permissions schema allows: mostly unknown resources.
		ps := m.spec.schema("Permissions")
		item := ps.AdditionalProperties.Schema.Value.Items.Value
		r.perms = rapid.MapOfN(rapid.StringMatching(`[a-z:_]{0,12}`),
			rapid.SliceOfNDistinct(rapid.Custom(func(t *rapid.T) string { return cfString(t, item, "action") }), 0, 3, rapid.ID[string]),
			0, 3).Draw(t, "schema permissions")
	}
	body := map[string]any{"name": r.name, "permissions": r.perms}
	if rapid.IntRange(0, 2).Draw(t, "expiry?") == 0 {
		e := time.Now().Add(time.Duration(rapid.IntRange(1, 5*365*24).Draw(t, "expiry hours")) * time.Hour).UTC().Truncate(time.Second)
		r.expires = &e
		body["expires_at"] = e.Format(time.RFC3339)
	}
	if rapid.Bool().Draw(t, "metadata?") {
		// Any runes but U+0000, which the Metadata schema (and the stores) refuse.
		noNUL := rapid.Rune().Filter(func(r rune) bool { return r != 0 })
		r.metadata = rapid.MapOfN(rapid.StringOfN(noNUL, 1, 40, -1), rapid.StringOfN(noNUL, 0, 60, -1), 0, 5).Draw(t, "metadata")
		body["metadata"] = r.metadata
	}

	// At most one deliberate break.
	mut := "none"
	if rapid.IntRange(0, 9).Draw(t, "break?") < 6 {
		mut = rapid.SampledFrom([]string{
			"drop name", "drop permissions", "empty object", "name wrong type", "permissions wrong type",
			"metadata wrong type", "metadata value wrong type", "expires_at wrong type", "expires_at not a date-time",
			"name too long", "name empty", "name control character", "metadata too many", "metadata value too long",
			"metadata key too long", "metadata key empty", "too many resources", "too many actions",
			"duplicate actions", "action pattern", "action number", "action too long", "unknown field",
			"extra query parameter", "repeated account_id", "missing account_id", "malformed account_id",
			"bad content type", "no content type", "malformed JSON", "unknown resource", "unknown action",
			"expiry in the past", "charset parameter",
		}).Draw(t, "break")
	}
	r.desc = append(r.desc, "break: "+mut)
	switch mut {
	case "drop name":
		delete(body, "name")
		r.breakAt("schema")
	case "drop permissions":
		delete(body, "permissions")
		r.breakAt("schema")
	case "empty object":
		body = map[string]any{}
		r.breakAt("schema")
	case "name wrong type":
		body["name"] = rapid.SampledFrom([]any{1, true, nil, []string{"n"}, map[string]any{}}).Draw(t, "name value")
		r.breakAt("schema")
	case "permissions wrong type":
		body["permissions"] = rapid.SampledFrom([]any{"payment:read", []string{"payment:read"}, nil, 7}).Draw(t, "permissions value")
		r.breakAt("schema")
	case "metadata wrong type":
		body["metadata"] = rapid.SampledFrom([]any{"team", []string{"a"}, 3, false}).Draw(t, "metadata value")
		r.breakAt("schema")
	case "metadata value wrong type":
		body["metadata"] = map[string]any{"k": rapid.SampledFrom([]any{1, true, []string{}, map[string]any{}}).Draw(t, "value")}
		r.breakAt("schema")
	case "expires_at wrong type":
		body["expires_at"] = rapid.SampledFrom([]any{1893456000, true, []string{}}).Draw(t, "expires_at value")
		r.breakAt("schema")
	case "expires_at not a date-time":
		body["expires_at"] = rapid.SampledFrom([]string{"tomorrow", "2030-01-01", "2030-13-01T00:00:00Z", "", "2030-01-01 00:00:00"}).Draw(t, "expires_at value")
		r.breakAt("schema")
	case "name too long":
		body["name"] = strings.Repeat("n", rapid.IntRange(101, 300).Draw(t, "name length"))
		r.breakAt("schema")
	case "name empty":
		body["name"] = ""
		r.breakAt("schema")
	case "name control character":
		c := rapid.SampledFrom([]string{"\x00", "\n", "\t", "\x1f", "\x7f", "\r"}).Draw(t, "control")
		body["name"] = "cf" + c + "x"
		r.breakAt("schema")
	case "metadata too many":
		md := map[string]string{}
		for i := 0; i < rapid.IntRange(21, 40).Draw(t, "metadata size"); i++ {
			md[fmt.Sprintf("k%d", i)] = "v"
		}
		body["metadata"] = md
		r.breakAt("schema")
	case "metadata value too long":
		body["metadata"] = map[string]string{"k": strings.Repeat("v", rapid.IntRange(501, 1000).Draw(t, "value length"))}
		r.breakAt("schema")
	case "metadata key too long":
		r.metadata = map[string]string{strings.Repeat("k", rapid.IntRange(41, 200).Draw(t, "key length")): "v"}
		body["metadata"] = r.metadata
		r.badMeta = true
	case "metadata key empty":
		r.metadata = map[string]string{"": "v"}
		body["metadata"] = r.metadata
		r.badMeta = true
	case "too many resources":
		p := map[string][]string{}
		for i := 0; i < rapid.IntRange(33, 40).Draw(t, "resources"); i++ {
			p[fmt.Sprintf("res%d", i)] = []string{"read"}
		}
		body["permissions"] = p
		r.breakAt("schema")
	case "too many actions":
		var acts []string
		for i := 0; i < rapid.IntRange(17, 20).Draw(t, "actions"); i++ {
			acts = append(acts, "a"+strings.Repeat("b", i))
		}
		body["permissions"] = map[string][]string{"payment": acts}
		r.breakAt("schema")
	case "duplicate actions":
		body["permissions"] = map[string][]string{"payment": {"read", "read"}}
		r.breakAt("schema")
	case "action pattern":
		a := rapid.SampledFrom([]string{"Read", "read!", "1read", "_read", "re ad", "", "read:all"}).Draw(t, "action")
		body["permissions"] = map[string][]string{"payment": {a}}
		r.breakAt("schema")
	case "action number":
		body["permissions"] = map[string]any{"payment": []any{rapid.SampledFrom([]any{1, 1.5, -0, 1e300}).Draw(t, "number")}}
		r.breakAt("schema")
	case "action too long":
		body["permissions"] = map[string][]string{"payment": {strings.Repeat("a", 33)}}
		r.breakAt("schema")
	case "unknown field":
		f := rapid.SampledFrom([]string{"admin", "Name", "id", "key", "managed", "account_id", "secret_hash", "expiresAt"}).Draw(t, "field")
		body[f] = rapid.SampledFrom([]any{true, "x", 1, nil}).Draw(t, "field value")
		r.breakAt("schema")
	case "extra query parameter":
		q.Set(rapid.SampledFrom([]string{"debug", "id", "Account_id", "account", "permissions", "x"}).Draw(t, "param"), "1")
		r.breakAt("query")
	case "repeated account_id":
		q["account_id"] = []string{r.account, rapid.SampledFrom([]string{r.account, cfAcctB}).Draw(t, "second")}
		r.breakAt("query")
	case "missing account_id":
		q.Del("account_id")
		r.breakAt("schema")
	case "malformed account_id":
		q.Set("account_id", rapid.SampledFrom([]string{"", "-acct", "acct with spaces", "acct/x", "äcct", strings.Repeat("a", 65), "acct\x00", "_a"}).Draw(t, "account_id"))
		r.breakAt("schema")
	case "bad content type":
		r.ctype = rapid.SampledFrom([]string{"text/plain", "application/xml", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/jsonx", "json", "application/vnd.api+json"}).Draw(t, "content type")
		r.breakAt("ctype")
	case "no content type":
		r.ctype = ""
		r.breakAt("ctype")
	case "malformed JSON":
		r.breakAt("decode")
	case "unknown resource":
		r.perms = map[string][]string{rapid.SampledFrom([]string{"nuclear", "payments", "account:api", "Payment", ""}).Draw(t, "resource"): {"read"}}
		body["permissions"] = r.perms
	case "unknown action":
		r.perms = map[string][]string{rapid.SampledFrom(cfKeysOf(m.spec.catalog)).Draw(t, "resource"): {rapid.SampledFrom([]string{"explode", "admin", "write", "readx"}).Draw(t, "action")}}
		body["permissions"] = r.perms
	case "expiry in the past":
		e := time.Now().Add(-time.Duration(rapid.IntRange(1, 10000).Draw(t, "hours ago")) * time.Hour).UTC().Truncate(time.Second)
		r.expires = &e
		body["expires_at"] = e.Format(time.RFC3339)
	case "charset parameter":
		r.ctype = "application/json; charset=utf-8"
	}
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	if mut == "malformed JSON" {
		b = b[:rapid.IntRange(0, len(b)-1).Draw(t, "cut at")]
		if len(b) == 0 || json.Valid(b) {
			b = append(b, '{')
		}
	}
	r.body = b
	r.query = q.Encode()
	if mut == "repeated account_id" {
		r.query = "account_id=" + url.QueryEscape(q["account_id"][0]) + "&account_id=" + url.QueryEscape(q["account_id"][1])
	}
	return r
}

func cfKeysOf(c perm.Catalog) []string {
	var out []string
	for k := range c {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (m *cfModel) drawRegenerate(t *rapid.T, tok cfToken) *cfRequest {
	r := &cfRequest{op: hxOpRegenerate, method: http.MethodPost, token: tok}
	idSchema := m.spec.schema("ApiKeyId")
	switch rapid.IntRange(0, 9).Draw(t, "id kind") {
	case 0, 1, 2, 3, 4, 5:
		k := m.pick(t, "target", func(*cfKey) bool { return true })
		r.id = k.id
		// Prefer keys the caller could rotate.
		if tok.p != nil && rapid.Bool().Draw(t, "own managed?") {
			if own := m.pick(t, "own target", func(k *cfKey) bool {
				return k.managed && k.mode == tok.p.mode && slices.Contains(tok.p.accounts, k.account)
			}); own != nil {
				r.id = own.id
			}
		}
	case 6, 7:
		r.id = cfString(t, idSchema, "unknown id")
	default:
		r.id = rapid.SampledFrom([]string{"nope", "key_", "KEY_abc", "key_abc-def", "key_" + strings.Repeat("a", 61),
			"key_é", "key_a b", "key_a.b", "x", "key_abc\n", "key_abc%", "key_\x00", "kéy_abc", "key_abc?x=1", "key_abc#f",
			"1", "key_ABC_def", "key_" + strings.Repeat("9", 1000)}).Draw(t, "malformed id")
		r.breakAt("schema")
	}
	r.path = "/v1/api-keys/" + url.PathEscape(r.id) + "/regenerate"
	r.desc = append(r.desc, "id "+fmt.Sprintf("%q", r.id))
	q := url.Values{}
	if rapid.IntRange(0, 9).Draw(t, "extra query?") == 0 {
		q.Set(rapid.SampledFrom([]string{"account_id", "id", "force", "x"}).Draw(t, "param"), "1")
		r.breakAt("query")
		r.desc = append(r.desc, "extra query parameter")
	}
	r.query = q.Encode()
	// The optional body: a grace period, valid or broken.
	gs := m.spec.schema("RegenerateApiKeyRequest").Properties["grace_period_minutes"].Value
	lo, hi := int(*gs.Min), int(*gs.Max)
	r.ctype = "application/json"
	switch rapid.IntRange(0, 12).Draw(t, "body kind") {
	case 0, 1, 2, 3:
		r.ctype = rapid.SampledFrom([]string{"", "application/json", "text/plain"}).Draw(t, "content type of no body")
		r.desc = append(r.desc, "no body")
	case 4:
		r.body = []byte("{}")
	case 5, 6, 7:
		g := rapid.SampledFrom([]int{lo, lo, hi, rapid.IntRange(lo, hi).Draw(t, "grace minutes")}).Draw(t, "grace")
		r.grace = &g
		r.body = []byte(fmt.Sprintf(`{"grace_period_minutes":%d}`, g))
	case 8:
		r.body = []byte(rapid.SampledFrom([]string{
			fmt.Sprintf(`{"grace_period_minutes":%d}`, lo-1), fmt.Sprintf(`{"grace_period_minutes":%d}`, hi+1),
			`{"grace_period_minutes":1e12}`, `{"grace_period_minutes":1.5}`, `{"grace_period_minutes":"60"}`,
			`{"grace_period_minutes":true}`, `{"grace":5}`, `{"id":"key_x"}`,
			`[]`, `"60"`, `60`, `null`,
		}).Draw(t, "invalid body"))
		r.breakAt("schema")
	case 9:
		r.body = []byte(rapid.SampledFrom([]string{"not json", "{", `{"grace_period_minutes":}`, "{\"grace_period_minutes\":1,}"}).Draw(t, "malformed body"))
		r.breakAt("decode")
	default:
		r.body = []byte(`{"grace_period_minutes":5}`)
		r.ctype = rapid.SampledFrom([]string{"", "text/plain", "application/xml", "application/x-www-form-urlencoded"}).Draw(t, "bad content type")
		r.breakAt("ctype")
	}
	return r
}

func (m *cfModel) send(t *rapid.T, r *cfRequest) {
	u := m.env.Root + r.path
	if r.query != "" {
		u += "?" + r.query
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("building %s: %v", r, err)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	if r.token.header != "" {
		req.Header.Set("Authorization", r.token.header)
	}
	res, err := m.http.Do(req)
	if err != nil {
		t.Fatalf("%s: %v", r, err)
	}
	body, err := io.ReadAll(res.Body)
	_ = res.Body.Close() // read to its end, or failed reading: nothing left to report
	if err != nil {
		t.Fatalf("%s: reading: %v", r, err)
	}
	code, err := m.spec.hxCheckResponse(r.op, req, res, body)
	if err != nil {
		t.Fatalf("%s\n=> %d: %v", r, res.StatusCode, err)
	}
	wantStatus, wantCode := m.expect(r)
	// Record what the server acknowledged before judging it, so the store
	// invariants below stay true to what clients were told.
	if res.StatusCode < 300 {
		m.acknowledge(t, r, res.StatusCode, body)
	}
	m.stats[fmt.Sprintf("%s %d", r.op, res.StatusCode)]++
	if res.StatusCode != wantStatus || code != wantCode {
		t.Fatalf("%s\n=> got %d/%d, the model expects %d/%d: %.500s", r, res.StatusCode, code, wantStatus, wantCode, body)
	}
}

type cfAPIKeyEnvelope struct {
	Success bool `json:"success"`
	Data    struct {
		ID          string              `json:"id"`
		AccountID   string              `json:"account_id"`
		Name        string              `json:"name"`
		Type        string              `json:"type"`
		Key         string              `json:"key"`
		Managed     bool                `json:"managed"`
		Status      string              `json:"status"`
		Permissions map[string][]string `json:"permissions"`
		Metadata    map[string]string   `json:"metadata"`
		ExpiresAt   *time.Time          `json:"expires_at"`
		// PreviousKeyExpiresAt is set while a replaced secret still works.
		PreviousKeyExpiresAt *time.Time `json:"previous_key_expires_at"`
	} `json:"data"`
}

func (m *cfModel) acknowledge(t *rapid.T, r *cfRequest, status int, body []byte) {
	var env cfAPIKeyEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		t.Fatalf("%s: success body: %v", r, err)
	}
	d := env.Data
	parsed, err := keys.Parse(d.Key)
	if err != nil {
		t.Fatalf("%s: issued key fails its own format: %v", r, err)
	}
	p := r.token.p
	if p == nil {
		t.Fatalf("%s: %d for a token that must not authenticate", r, status)
		return // rapid's Fatalf does not return either; staticcheck cannot know
	}
	if parsed.Sandbox != (p.mode == apikey.Sandbox) {
		t.Fatalf("%s: %s key issued to a %s caller", r, d.Key[:8], p.mode)
	}
	switch r.op {
	case hxOpCreate:
		if status != 201 || d.Managed || d.Type != apikey.TypeSecret || parsed.Kind != keys.KindSecret || d.AccountID != r.account || d.Name != norm.NFC.String(r.name) || d.Status != "ACTIVE" {
			t.Fatalf("%s: unexpected created key %+v", r, d)
		}
		if !cfSamePerms(d.Permissions, r.perms) {
			t.Fatalf("%s: created key holds %v, asked for %v", r, d.Permissions, r.perms)
		}
		if len(p.perms.Missing(perm.FromMap(d.Permissions))) > 0 {
			t.Fatalf("%s: created key holds %v, more than its creator", r, d.Permissions)
		}
		if (r.expires == nil) != (d.ExpiresAt == nil) || (r.expires != nil && !r.expires.Equal(*d.ExpiresAt)) {
			t.Fatalf("%s: expires_at %v, asked for %v", r, d.ExpiresAt, r.expires)
		}
		if len(d.Metadata) != len(r.metadata) {
			t.Fatalf("%s: metadata %v, sent %v", r, d.Metadata, r.metadata)
		}
		for k, v := range r.metadata {
			if d.Metadata[k] != v {
				t.Fatalf("%s: metadata %v, sent %v", r, d.Metadata, r.metadata)
			}
		}
		if m.byID[d.ID] != nil {
			t.Fatalf("%s: id %s issued twice", r, d.ID)
		}
		if p.expires != nil && (d.ExpiresAt == nil || d.ExpiresAt.After(*p.expires)) {
			t.Fatalf("%s: created key expires %v, after its creator (%v)", r, d.ExpiresAt, p.expires)
		}
		m.addKey(&cfKey{mode: p.mode, account: r.account, id: d.ID, typ: apikey.TypeSecret, perms: d.Permissions, expires: d.ExpiresAt, secret: d.Key}, d.Name)
		m.created[p.mode][r.account]++
	case hxOpRegenerate:
		k := m.byID[r.id]
		if status != 200 || k == nil || d.ID != r.id || !d.Managed || d.Type != k.typ || d.Key == k.secret || slices.Contains(k.old, d.Key) {
			t.Fatalf("%s: unexpected regenerated key %+v", r, d)
		}
		if (parsed.Kind == keys.KindPublishable) != (k.typ == apikey.TypePublishable) {
			t.Fatalf("%s: regenerated %s key is %v", r, k.typ, parsed.Kind)
		}
		k.old = append(k.old, k.secret)
		k.prev, k.prevUntil = "", time.Time{}
		if r.grace != nil && *r.grace > 0 {
			if d.PreviousKeyExpiresAt == nil {
				t.Fatalf("%s: no previous_key_expires_at after a grace period", r)
			}
			want := time.Now().Add(time.Duration(*r.grace) * time.Minute)
			if d.PreviousKeyExpiresAt.After(want) || d.PreviousKeyExpiresAt.Before(want.Add(-time.Minute)) {
				t.Fatalf("%s: previous_key_expires_at %v, want about %v", r, d.PreviousKeyExpiresAt, want)
			}
			k.prev, k.prevUntil = k.secret, *d.PreviousKeyExpiresAt
		} else if d.PreviousKeyExpiresAt != nil {
			t.Fatalf("%s: previous_key_expires_at %v without a grace period", r, d.PreviousKeyExpiresAt)
		}
		k.secret = d.Key
	}
}

func cfSamePerms(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, va := range a {
		vb, ok := b[k]
		if !ok {
			return false
		}
		x, y := slices.Clone(va), slices.Clone(vb)
		sort.Strings(x)
		sort.Strings(y)
		if !slices.Equal(x, y) {
			return false
		}
	}
	return true
}

// ---------------------------------------------------------------------------

// hxNoRapidFailFiles keeps rapid from writing testdata/rapid/ into the
// package on failure (the seed to reproduce is printed anyway), unless
// -rapid.nofailfile was given explicitly.
func hxNoRapidFailFiles() {
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.nofailfile" })
	if !set {
		_ = flag.Set("rapid.nofailfile", "true")
	}
}

func TestContractFuzz(t *testing.T) {
	hxNoRapidFailFiles()
	spec := hxLoadSpec(t)
	env := testenv.New(t, testenv.Config{})
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	m := &cfModel{
		spec: spec, env: env, http: &http.Client{Timeout: 15 * time.Second},
		byID:     map[string]*cfKey{},
		names:    map[apikey.Mode]map[string]map[string]bool{apikey.Live: {}, apikey.Sandbox: {}},
		created:  map[apikey.Mode]map[string]int{apikey.Live: {}, apikey.Sandbox: {}},
		otherJWT: other,
		allPerms: cfPermStrings(spec.catalog),
		stats:    map[string]int{},
	}
	all := spec.catalog.All()
	// The managed publishable key reads every resource but API keys (the
	// spec's description of publishable keys).
	readOnly := map[string][]string{}
	for res, acts := range spec.catalog {
		if acts["read"] && res != "account:api:key" {
			readOnly[res] = []string{"read"}
		}
	}
	for _, a := range []string{cfAcctA, cfAcctB} {
		for mode, mk := range env.Bootstrap(a) {
			m.addKey(&cfKey{mode: mode, account: a, id: mk.SecretID, typ: apikey.TypeSecret, managed: true, perms: all, secret: mk.Secret}, "Managed secret key")
			m.addKey(&cfKey{mode: mode, account: a, id: mk.PublishableID, typ: apikey.TypePublishable, managed: true, perms: readOnly, secret: mk.Publishable}, "Managed publishable key")
		}
	}
	start := time.Now()
	rapid.Check(t, func(t *rapid.T) {
		for i, n := 0, rapid.IntRange(1, 10).Draw(t, "requests"); i < n; i++ {
			tok := m.drawToken(t)
			var r *cfRequest
			if rapid.IntRange(0, 2).Draw(t, "operation") < 2 {
				r = m.drawCreate(t, tok)
			} else {
				r = m.drawRegenerate(t, tok)
			}
			m.send(t, r)
		}
	})
	var lines []string
	for k, v := range m.stats {
		lines = append(lines, fmt.Sprintf("%s: %d", k, v))
	}
	sort.Strings(lines)
	t.Logf("%d requests in %v; answers: %s", cfSum(m.stats), time.Since(start).Round(time.Millisecond), strings.Join(lines, ", "))
	if t.Failed() {
		return
	}
	cfCheckStore(t, m)
}

func cfSum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

// cfCheckStore reads the SQLite files directly and checks them against what
// clients were told.
func cfCheckStore(t *testing.T, m *cfModel) {
	env := m.env
	st := env.Store
	// Keys per account: the two managed ones plus every create acknowledged with 201.
	for _, mode := range apikey.Modes {
		total := 0
		for _, a := range []string{cfAcctA, cfAcctB, cfAcctGhost} {
			want := m.created[mode][a]
			if a != cfAcctGhost {
				want += 2
			}
			if got := hxCountKeys(t, st, mode, a); got != want {
				t.Errorf("%s %s holds %d keys, want 2 managed + %d acknowledged creates", mode, a, got, m.created[mode][a])
			}
			total += want
		}
		if got := hxCountKeys(t, st, mode, ""); got != total {
			t.Errorf("%s holds %d keys in all, want %d", mode, got, total)
		}
		db := st.(*sqlite.Store).DB(mode)
		var dups, badLen, uniqueIdx int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM (SELECT secret_hash FROM api_keys GROUP BY secret_hash HAVING count(*) > 1)`).Scan(&dups); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM api_keys WHERE secret_hash IS NULL OR length(secret_hash) != 32
			OR (prev_secret_hash IS NULL) != (prev_secret_expires_at IS NULL)
			OR (prev_secret_hash IS NOT NULL AND (length(prev_secret_hash) != 32 OR prev_secret_hash = secret_hash))`).Scan(&badLen); err != nil {
			t.Fatal(err)
		}
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pragma_index_list('api_keys') AS il, pragma_index_info(il.name) AS ii
			WHERE il."unique" = 1 AND ii.name = 'secret_hash'`).Scan(&uniqueIdx); err != nil {
			t.Fatal(err)
		}
		if dups != 0 || badLen != 0 || uniqueIdx == 0 {
			t.Errorf("%s: %d shared secret hashes, %d rows with a bad secret or previous-secret hash, %d unique indexes on secret_hash", mode, dups, badLen, uniqueIdx)
		}
	}
	// Every acknowledged secret authenticates iff it is the latest of its key.
	a := &auth.Authenticator{Store: st, Now: env.Clock.Now}
	needles := map[string]string{}
	latest, superseded, inGrace := 0, 0, 0
	for _, k := range m.keys {
		hxSecretNeedles(needles, k.secret, "secret of "+k.id)
		if got := hxKeyIDForSecret(t, st, k.mode, k.secret); got != k.id {
			t.Errorf("latest secret of %s is stored for %q", k.id, got)
		}
		p, err := a.Authenticate(context.Background(), "Bearer "+k.secret, "127.0.0.1")
		if err != nil || p.KeyID != k.id {
			t.Errorf("latest secret of %s does not authenticate: %v", k.id, err)
		}
		latest++
		if k.prev != "" {
			hxSecretNeedles(needles, k.prev, "previous secret of "+k.id)
			if n := hxHashRefs(t, st, k.mode, k.prev); n != 1 {
				t.Errorf("previous secret of %s: %d rows refer to its hash, want 1", k.id, n)
			}
			p, err := a.Authenticate(context.Background(), "Bearer "+k.prev, "127.0.0.1")
			if err != nil || p.KeyID != k.id {
				t.Errorf("previous secret of %s does not authenticate within its grace period: %v", k.id, err)
			}
			inGrace++
		}
		for _, old := range k.superseded() {
			hxSecretNeedles(needles, old, "superseded secret of "+k.id)
			// The secret the last rotation replaced is kept (its grace over)
			// until the key rotates again, so that verify says REVOKED and a
			// leak report true_positive (issue 18); older ones are gone.
			want := 0
			if old == k.old[len(k.old)-1] {
				want = 1
			}
			if n := hxHashRefs(t, st, k.mode, old); n != want {
				t.Errorf("superseded secret of %s: %d rows refer to its hash, want %d", k.id, n, want)
			}
			if p, err := a.Authenticate(context.Background(), "Bearer "+old, "127.0.0.1"); err == nil {
				t.Errorf("superseded secret of %s still authenticates as %s", k.id, p.KeyID)
			}
			superseded++
		}
	}
	// No plaintext secret, nor its random part, in any database file.
	files := env.SQLiteFiles()
	if len(files) < 2 {
		t.Fatalf("database files: %v", files)
	}
	hxScanFiles(t, files, needles)
	t.Logf("store invariants hold: %d keys (%d latest secrets and %d previous ones in grace authenticate, %d superseded do not), %d files scanned", len(m.keys), latest, inGrace, superseded, len(files))
}

// cfNameForPeople is the model's own statement of rule 6 (names are for
// people): after NFC, no control, format, private-use, surrogate or
// line/paragraph separator character, no space but U+0020, no noncharacter,
// and no white space at either end.
func cfNameForPeople(name string) bool {
	n := norm.NFC.String(name)
	if n == "" || utf8.RuneCountInString(n) > 100 || strings.TrimSpace(n) != n {
		return false
	}
	for _, r := range n {
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp) ||
			(unicode.Is(unicode.Zs, r) && r != ' ') || (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE {
			return false
		}
	}
	// Something a person sees (issue 17): not only combining marks,
	// default-ignorable characters (Hangul fillers, variation selectors)
	// and spaces, which render as nothing or on top of nothing.
	for _, r := range norm.NFD.String(n) {
		if !unicode.In(r, unicode.Mn, unicode.Me, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector) && r != ' ' {
			return true
		}
	}
	return false
}
