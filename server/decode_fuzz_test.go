package server_test

// go test -fuzz targets for request decoding, through the real handler chain
// (server.New on a temporary SQLite store made once per target and process).
// Invariants: never a 5xx (the server's own response validation is on, so a
// response that breaks the spec would show up as a 500), every error is the
// envelope with its request id, and every success is a valid key envelope.
// Run with .ci/fuzz.sh; plain `go test` runs the seed corpus only.

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/server"
)

const fzAccount = "acct_fuzz"

type fzServer struct {
	srv  *server.Server
	spec *hxSpec
	// The managed sandbox keys: the secret authenticates every request.
	secret, secretID, publishableID string
}

func newFuzzServer(f *testing.F) *fzServer {
	f.Helper()
	st, err := sqlite.Open(context.Background(), f.TempDir(), sqlite.Options{Synchronous: "OFF"})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = st.Close() }) // the fuzzing is over: closing only frees the files
	srv, err := server.New(server.Options{
		Store:              st,
		ResponseValidation: 1,
		RateLimits:         map[apikey.Mode]int{apikey.Live: 1 << 30, apikey.Sandbox: 1 << 30},
		AccountLimits:      map[apikey.Mode]int{apikey.Live: 1 << 30, apikey.Sandbox: 1 << 30},
		AuthFailureLimit:   1 << 30,
	})
	if err != nil {
		f.Fatal(err)
	}
	issued, err := srv.Service.Bootstrap(context.Background(), fzAccount, []apikey.Mode{apikey.Sandbox})
	if err != nil {
		f.Fatal(err)
	}
	fz := &fzServer{srv: srv, spec: hxLoadSpec(f)}
	for _, is := range issued {
		if is.Key.Type == apikey.TypeSecret {
			fz.secret, fz.secretID = is.Secret, is.Key.ID
		} else {
			fz.publishableID = is.Key.ID
		}
	}
	return fz
}

// serve runs one request through the server and checks the invariants.
func (fz *fzServer) serve(t *testing.T, op string, req *http.Request) (int, []byte) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+fz.secret)
	rec := httptest.NewRecorder()
	fz.srv.ServeHTTP(rec, req)
	res := rec.Result()
	body := rec.Body.Bytes()
	if res.StatusCode >= 500 {
		t.Fatalf("%s %s: %d: %s", req.Method, req.URL, res.StatusCode, body)
	}
	if _, err := fz.spec.hxCheckResponse(op, req, res, body); err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	if res.StatusCode < 300 {
		var env cfAPIKeyEnvelope
		if err := json.Unmarshal(body, &env); err != nil || !env.Success {
			t.Fatalf("success that is not the key envelope: %s", body)
		}
		if _, err := keys.Parse(env.Data.Key); err != nil {
			t.Fatalf("issued key %q: %v", env.Data.Key, err)
		}
	}
	return res.StatusCode, body
}

// FuzzCreateBody POSTs raw bodies to create.
func FuzzCreateBody(f *testing.F) {
	fz := newFuzzServer(f)
	for _, s := range []string{
		`{"name":"n","permissions":{}}`,
		`{"name":"Checkout backend","permissions":{"payment":["create","read"],"account:api:key":["create"]},"expires_at":"2030-01-01T00:00:00Z","metadata":{"team":"checkout"}}`,
		`{"name":"n","permissions":{"payment":["read","read"]}}`,
		`{"name":"n","NAME":"m","permissions":{}}`,
		`{"name":"a\u0000b","permissions":{}}`,
		`{"name":"n","permissions":{"payment":[[[[]]]]}}`,
		`{"name":"n","permissions":{},"expires_at":"2001-01-01T00:00:00Z"}`,
		`{"name":"n","permissions":{"nuclear":["launch"]}}`,
		`{"name":"n","permissions":{}} trailing`,
		`{"name":1e999,"permissions":{}}`,
		`[]`, `null`, `"x"`, ``, `{`, "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/api-keys/?account_id="+fzAccount, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		fz.serve(t, hxOpCreate, req)
	})
}

// FuzzRegenerateRequest fuzzes regenerate's path id and optional body.
func FuzzRegenerateRequest(f *testing.F) {
	fz := newFuzzServer(f)
	for _, seed := range []struct{ id, body string }{
		{fz.publishableID, ``},
		{fz.publishableID, `{}`},
		{fz.publishableID, `{"grace_period_minutes":60}`},
		{fz.publishableID, `{"grace_period_minutes":-1}`},
		{fz.publishableID, `{"grace_period_minutes":1e400}`},
		{"key_doesnotexist", `{}`},
		{"key_", ``},
		{"key_a/b", ``},
		{"key_%2F", `null`},
		{"..", ``},
		{"key_é", `[]`},
	} {
		f.Add(seed.id, []byte(seed.body))
	}
	f.Fuzz(func(t *testing.T, id string, body []byte) {
		req := httptest.NewRequest(http.MethodPost, "/v1/", bytes.NewReader(body))
		// Set the path as a router would see it after decoding, whatever it holds.
		req.URL.Path, req.URL.RawPath = "/v1/api-keys/"+id+"/regenerate", ""
		if len(body) > 0 {
			req.Header.Set("Content-Type", "application/json")
		}
		op := hxOpRegenerate
		if strings.ContainsAny(id, "/?#") || id == "" {
			op = "" // may not reach the operation at all
		}
		var status int
		var resBody []byte
		if op == "" {
			status, resBody = fz.serveAny(t, req)
		} else {
			status, resBody = fz.serve(t, op, req)
		}
		if status == http.StatusOK {
			var env cfAPIKeyEnvelope
			_ = json.Unmarshal(resBody, &env)
			if env.Data.ID != fz.publishableID && env.Data.ID != fz.secretID {
				t.Fatalf("regenerated %q for id %q", env.Data.ID, id)
			}
			if env.Data.ID == fz.secretID {
				fz.secret = env.Data.Key // the caller rotated its own secret
			}
		}
	})
}

// serveAny checks a request that may not reach an operation: no 5xx, and
// errors in the envelope.
func (fz *fzServer) serveAny(t *testing.T, req *http.Request) (int, []byte) {
	t.Helper()
	req.Header.Set("Authorization", "Bearer "+fz.secret)
	rec := httptest.NewRecorder()
	fz.srv.ServeHTTP(rec, req)
	res := rec.Result()
	body := rec.Body.Bytes()
	if res.StatusCode >= 500 {
		t.Fatalf("%s %q: %d: %s", req.Method, req.URL.Path, res.StatusCode, body)
	}
	if res.StatusCode >= 300 {
		if _, err := hxCheckEnvelope(res, body); err != nil {
			t.Fatalf("%s %q: %v", req.Method, req.URL.Path, err)
		}
	}
	return res.StatusCode, body
}
