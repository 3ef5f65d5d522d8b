package server_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// TestEveryOperationHasAStack holds every operation in the spec to a
// middleware stack, from its declared security: bearer for all but the leak
// report, whose GitHub signature stack has no permission to enforce.
func TestEveryOperationHasAStack(t *testing.T) {
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	stacks := server.Stacks()
	n := 0
	for path, item := range spec.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			n++
			a, ok := spec.Authentication[op.OperationID]
			if !ok || stacks[a] == nil {
				t.Fatalf("%s %s (%s) has no stack", method, path, op.OperationID)
			}
			want := server.AuthBearer
			if op.OperationID == "reportLeakedKeys" {
				want = server.AuthGitHubSignature
			}
			if a != want {
				t.Fatalf("%s: stack %s, want %s", op.OperationID, a, want)
			}
			if _, hasPerm := spec.Permissions[op.OperationID]; hasPerm != (a == server.AuthBearer) {
				t.Fatalf("%s: permission declared %v under the %s stack", op.OperationID, hasPerm, a)
			}
		}
	}
	if n != len(spec.Authentication) {
		t.Fatalf("%d operations, %d authentications", n, len(spec.Authentication))
	}
	if got := stacks[server.AuthBearer]; !reflect.DeepEqual(got, []string{"authenticate", "rateLimit", "authorize", "sampleResponse", "validateRequest", "idempotent"}) {
		t.Fatalf("bearer stack %v", got)
	}
	if got := stacks[server.AuthGitHubSignature]; !reflect.DeepEqual(got, []string{"verifyLeakSignature", "rateLimitLeakReports", "sampleResponse", "validateRequest"}) {
		t.Fatalf("signature stack %v", got)
	}
}

// TestStackFromSpecRefusesUnclearSecurity: an operation with no security,
// `security: []`, a choice of schemes or a scheme without a stack stops the
// server at start, so nothing is served unguarded.
func TestStackFromSpecRefusesUnclearSecurity(t *testing.T) {
	for name, sec := range map[string]*openapi3.SecurityRequirements{
		"empty":        {},
		"a choice":     {{"bearerAuth": {}}, {"githubSignature": {}}},
		"both at once": {{"bearerAuth": {}, "githubSignature": {}}},
		"unknown":      {{"basicAuth": {}}},
	} {
		doc, err := api.GetSpec()
		if err != nil {
			t.Fatal(err)
		}
		doc.Paths.Value("/secret-scanning/github").Post.Security = sec
		if _, err := server.OperationAuthentication(doc); err == nil {
			t.Fatalf("%s: accepted", name)
		}
	}
	doc, _ := api.GetSpec()
	doc.Security = nil // the bearer operations inherit the document's
	if _, err := server.OperationAuthentication(doc); err == nil || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("no document security: %v", err)
	}
}

// The signature stack judges the signature before the body: an unsigned
// body that is no report is 401, not 400; the bearer stack authenticates
// before validating too.
func TestStacksRunInOrder(t *testing.T) {
	_, ghKeys := testenv.NewLeakSigner(t, "gh-key-1")
	env := testenv.New(t, testenv.Config{SecretScanning: ghKeys})
	status, b, _ := postLeaks(t, env, []byte(`{"not":"a report"}`), nil)
	if status != http.StatusUnauthorized || !strings.Contains(string(b), `"code":40104`) {
		t.Fatalf("unsigned junk: %d %s", status, b)
	}
	// A bearer token on the leak route is not a signature.
	m := env.Bootstrap(acct)[sandbox]
	status, b, _ = postLeaks(t, env, []byte(`[]`), map[string]string{"Authorization": "Bearer " + m.Secret})
	if status != http.StatusUnauthorized || !strings.Contains(string(b), `"code":40104`) {
		t.Fatalf("bearer on the leak route: %d %s", status, b)
	}
}
