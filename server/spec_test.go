package server_test

import (
	"context"
	"encoding/json"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/server"
)

func loadSpecFile(t *testing.T) (*openapi3.T, []byte) {
	t.Helper()
	raw, err := os.ReadFile("../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := openapi3.NewLoader().LoadFromData(raw)
	if err != nil {
		t.Fatal(err)
	}
	return doc, raw
}

// TestSpecIsValid validates openapi.yaml, examples and formats included.
func TestSpecIsValid(t *testing.T) {
	doc, _ := loadSpecFile(t)
	if !strings.HasPrefix(doc.OpenAPI, "3.0.") {
		t.Fatalf("spec is %s: keep 3.0.x (3.1 validation is ~12x slower in kin-openapi)", doc.OpenAPI)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation(), openapi3.EnableSchemaFormatValidation()); err != nil {
		t.Fatal(err)
	}
	// Every response of every operation has an example.
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for status, ref := range op.Responses.Map() {
				mt := ref.Value.Content.Get("application/json")
				if mt == nil || (mt.Example == nil && len(mt.Examples) == 0) {
					t.Errorf("%s %s %s: no example", method, path, status)
				}
			}
		}
	}
}

// TestEmbeddedSpecMatchesFile fails when gen/ was not regenerated after an edit.
func TestEmbeddedSpecMatchesFile(t *testing.T) {
	fileDoc, _ := loadSpecFile(t)
	embedded, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	// Both sides through JSON, every error checked: two failed encodings
	// would otherwise compare equal (nil and nil).
	a, err := json.Marshal(fileDoc)
	if err != nil {
		t.Fatalf("encode openapi.yaml: %v", err)
	}
	b, err := json.Marshal(embedded)
	if err != nil {
		t.Fatalf("encode the embedded spec: %v", err)
	}
	var x, y map[string]any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("decode openapi.yaml's JSON: %v", err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("decode the embedded spec's JSON: %v", err)
	}
	if len(x) == 0 || x["paths"] == nil {
		t.Fatalf("openapi.yaml encoded to %d top-level fields and no paths: nothing compared", len(x))
	}
	if !reflect.DeepEqual(x, y) {
		t.Fatal("the spec embedded in gen/api differs from openapi.yaml: run `make generate`")
	}
}

// TestEveryOperationDeclaresPermission: the server refuses to start otherwise,
// and the declarations are the ones the product promises.
func TestEveryOperationDeclaresPermission(t *testing.T) {
	spec, err := server.LoadSpec()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"createApiKey": "account:api:key:create", "regenerateApiKey": "account:api:key:update",
		"listApiKeys": "account:api:key:read", "getApiKey": "account:api:key:read",
		"updateApiKey": "account:api:key:update", "deleteApiKey": "account:api:key:delete",
		"listAuditEvents": "account:audit:read", "verifyApiKey": "account:api:key:verify",
	}
	if !reflect.DeepEqual(spec.Permissions, want) {
		t.Fatalf("permissions = %v, want %v", spec.Permissions, want)
	}
	for _, p := range want {
		res := p[:strings.LastIndex(p, ":")]
		if !spec.Catalog[res][p[len(res)+1:]] {
			t.Fatalf("%s is not in the permission catalog", p)
		}
	}
}
