package client_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/gen/api"
)

// fakeServer stands in for the service in the examples. It routes and
// validates each request against openapi.yaml (as compiled into gen/api) and
// answers with the spec's own example of the operation's success response,
// itself checked against the spec; a key id that no example names answers
// the spec's 404 example, a request without a bearer token its 401 example.
// The audit events are the spec's example event preceded by the create it
// records the disabling of, over two pages, with hashes computed so that the
// chain holds (the spec's hashes are placeholders).
type fakeServer struct {
	// URL is the base URL to give client.New; it ends in /v1.
	URL string
	// Requests counts the requests that reached the server.
	Requests atomic.Int32

	srv *httptest.Server
}

func (f *fakeServer) Close() { f.srv.Close() }

var (
	specOnce   sync.Once
	specDoc    *openapi3.T
	specRouter routers.Router
	specErr    error
)

func loadSpec() (*openapi3.T, routers.Router, error) {
	specOnce.Do(func() {
		specDoc, specErr = api.GetSpec()
		if specErr != nil {
			return
		}
		specDoc.Servers = openapi3.Servers{{URL: "/v1"}}
		specRouter, specErr = gorillamux.NewRouter(specDoc)
	})
	return specDoc, specRouter, specErr
}

// exampleKeyIDs are the key ids of the spec's examples.
var exampleKeyIDs = map[string]bool{
	"key_4d8PqZyT6vWb2mK9xR3sN7fH": true, // Checkout backend, a custom key
	"key_9sT2vX6bN4mQ8wE1rY5uI3oP": true, // the managed secret key
}

// newFakeAPI starts a fakeServer, and sets HSRCPAY_API_KEY for the examples
// when it is not set.
func newFakeAPI() *fakeServer {
	if os.Getenv("HSRCPAY_API_KEY") == "" {
		if err := os.Setenv("HSRCPAY_API_KEY", "sk_test_8Jd2kLq9ZxV4mN7pR1sT6wY3bC5fH0gA3kP9qZ"); err != nil {
			panic(err)
		}
	}
	f := &fakeServer{}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	f.URL = f.srv.URL + "/v1"
	return f
}

func (f *fakeServer) serve(w http.ResponseWriter, r *http.Request) {
	f.Requests.Add(1)
	doc, router, err := loadSpec()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	route, params, err := router.FindRoute(r)
	if err != nil {
		writeEnvelope(w, r, nil, 404, fmt.Sprintf(`{"message":"Not found","success":false,"error":{"code":40402,"message":%q,"details":{"request_id":"req_example"}}}`, err.Error()))
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	op := route.Operation
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "Bearer ") || auth == "Bearer " {
		f.answer(w, in, op, "401", "")
		return
	}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		body, _ := json.Marshal(map[string]any{"message": "Request validation failed", "success": false, "error": map[string]any{
			"code": 40000, "message": err.Error(), "details": map[string]any{"request_id": "req_example"}}})
		writeEnvelope(w, r, in, 400, string(body))
		return
	}
	if id, ok := params["id"]; ok && !exampleKeyIDs[id] {
		f.answer(w, in, op, "404", "")
		return
	}
	if op.OperationID == "listAuditEvents" {
		f.answer(w, in, op, "200", auditPage(doc, r.URL.Query().Get("cursor")))
		return
	}
	status := "200"
	if op.Responses.Value("201") != nil {
		status = "201"
	}
	f.answer(w, in, op, status, "")
}

// answer writes the operation's example for status (or body when given),
// after checking it against the spec.
func (f *fakeServer) answer(w http.ResponseWriter, in *openapi3filter.RequestValidationInput, op *openapi3.Operation, status, body string) {
	if body == "" {
		ref := op.Responses.Value(status)
		if ref == nil || ref.Value == nil || ref.Value.Content.Get("application/json") == nil {
			http.Error(w, "the spec has no "+status+" answer for "+op.OperationID, http.StatusInternalServerError)
			return
		}
		mt := ref.Value.Content.Get("application/json")
		example := mt.Example
		if len(mt.Examples) > 0 {
			names := make([]string, 0, len(mt.Examples))
			for name := range mt.Examples {
				names = append(names, name)
			}
			sort.Strings(names)
			example = mt.Examples[names[0]].Value.Value
		}
		b, err := json.Marshal(example)
		if err != nil || example == nil {
			http.Error(w, fmt.Sprintf("the spec has no example for %s %s: %v", op.OperationID, status, err), http.StatusInternalServerError)
			return
		}
		body = string(b)
	}
	var code int
	if _, err := fmt.Sscan(status, &code); err != nil {
		http.Error(w, "status "+status+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	writeEnvelope(w, in.Request, in, code, body)
}

// writeEnvelope writes body with the headers the API sends, once it has
// checked it against the spec (when in is known).
func writeEnvelope(w http.ResponseWriter, r *http.Request, in *openapi3filter.RequestValidationInput, status int, body string) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Request-Id", "req_example")
	h.Set("RateLimit-Limit", "100")
	h.Set("RateLimit-Remaining", "99")
	h.Set("RateLimit-Reset", "1")
	if in != nil {
		err := openapi3filter.ValidateResponse(r.Context(), &openapi3filter.ResponseValidationInput{
			RequestValidationInput: in, Status: status, Header: h, Body: io.NopCloser(strings.NewReader(body)),
			Options: &openapi3filter.Options{IncludeResponseStatus: true},
		})
		if err != nil {
			http.Error(w, "the fake's answer violates openapi.yaml: "+err.Error(), http.StatusInternalServerError)
			return
		}
	}
	for k, v := range h {
		w.Header()[k] = v
	}
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body) // the client under test reports a short answer
}

// auditPage is a page of a two-event chain: the spec's example event (seq 2,
// a disable) on the first page, the create before it on the page its
// next_cursor fetches.
func auditPage(doc *openapi3.T, cursor string) string {
	ex := doc.Components.Examples["AuditPage"].Value.Value
	b, _ := json.Marshal(ex)
	var page struct {
		Data client.AuditEventPage `json:"data"`
	}
	if err := json.Unmarshal(b, &page); err != nil || len(page.Data.Data) != 1 {
		panic(fmt.Sprintf("the spec's AuditPage example: %v", err))
	}
	disable := page.Data.Data[0]
	create := client.AuditEvent{
		ID: "evt_1Aa2Bb3Cc4Dd5Ee6Ff7Gg8Hh9", Seq: 1, AccountID: disable.AccountID, Mode: disable.Mode,
		Action: client.AuditCreate, KeyID: disable.KeyID,
		Actor:    client.CreatedBy{Kind: client.CreatedByKey, ID: "key_9sT2vX6bN4mQ8wE1rY5uI3oP", RequestID: "req_5f0c8e2a9b7d41c3a6e2f901"},
		ClientIP: disable.ClientIP, CreatedAt: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
		Changes: map[string]any{"name": "Checkout backend", "type": "SECRET", "managed": false, "key_hint": "sk_test_…3kP9",
			"permissions": map[string]any{"payment": []any{"create", "read"}}, "metadata": map[string]any{"team": "checkout"},
			"expires_at": "2030-01-01T00:00:00Z"},
	}
	create.Hash, _ = client.AuditEventHash(&create)
	disable.PrevHash = create.Hash
	disable.Hash, _ = client.AuditEventHash(&disable)
	if cursor == "" {
		page.Data.Data = []client.AuditEvent{disable}
	} else {
		page.Data.Data, page.Data.HasMore, page.Data.NextCursor = []client.AuditEvent{create}, false, nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	// The client's types leave out the constant "object" fields; the spec
	// requires them.
	type event struct {
		Object string `json:"object"`
		client.AuditEvent
	}
	events := make([]event, len(page.Data.Data))
	for i, e := range page.Data.Data {
		events[i] = event{"audit_event", e}
	}
	data := struct {
		Object string  `json:"object"`
		Data   []event `json:"data"`
		client.AuditEventPage
	}{"list", events, page.Data}
	if err := enc.Encode(map[string]any{"message": "success", "success": true, "data": data}); err != nil {
		panic(fmt.Sprintf("the audit page: %v", err))
	}
	return strings.TrimSpace(buf.String())
}

// The fake the examples run against holds requests to the spec: what the
// real server refuses as malformed, it refuses too.
func TestFakeAPIChecksRequestsAgainstTheSpec(t *testing.T) {
	f := newFakeAPI()
	defer f.Close()
	for _, tc := range []struct {
		what, method, path, body, token string
		status                          int
		code                            client.ErrorCode
	}{
		{"limit 500", "GET", "/api-keys/?account_id=acct_demo&limit=500", "", "sk_test_x", 400, client.CodeValidationFailed},
		{"grace 10081", "POST", "/api-keys/key_9sT2vX6bN4mQ8wE1rY5uI3oP/regenerate", `{"grace_period_minutes":10081}`, "sk_test_x", 400, client.CodeValidationFailed},
		{"unknown field", "PATCH", "/api-keys/key_4d8PqZyT6vWb2mK9xR3sN7fH", `{"colour":"red"}`, "sk_test_x", 400, client.CodeValidationFailed},
		{"unknown key", "GET", "/api-keys/key_unknown", "", "sk_test_x", 404, client.CodeKeyNotFound},
		{"no token", "GET", "/api-keys/key_4d8PqZyT6vWb2mK9xR3sN7fH", "", "", 401, client.CodeInvalidCredentials}, // the spec's 401 example
		{"known key", "GET", "/api-keys/key_4d8PqZyT6vWb2mK9xR3sN7fH", "", "sk_test_x", 200, 0},
	} {
		req, _ := http.NewRequestWithContext(ctx, tc.method, f.URL+tc.path, strings.NewReader(tc.body))
		if tc.body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close() // read to its end
		var ae *client.Error
		if res.StatusCode != tc.status || (tc.code != 0 && (!errors.As(client.ParseError(res, body), &ae) || ae.Code != tc.code)) {
			t.Errorf("%s: %d %s, want %d %d", tc.what, res.StatusCode, body, tc.status, tc.code)
		}
	}
	if n := f.Requests.Load(); n != 6 {
		t.Errorf("%d requests counted", n)
	}
}
