package client

import (
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/gen/api"
)

// TestRequestChecksMatchTheSpec holds the bounds and patterns check.go
// enforces before sending to the spec's request schemas: a bound changed in
// openapi.yaml and not here would refuse in Go what the server takes (or
// send what it refuses).
func TestRequestChecksMatchTheSpec(t *testing.T) {
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	schema := func(name string) *openapi3.Schema {
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			t.Fatalf("no schema %s", name)
		}
		return ref.Value
	}
	prop := func(s *openapi3.Schema, name string) *openapi3.Schema {
		p := s.Properties[name]
		if p == nil || p.Value == nil {
			t.Fatalf("no property %s", name)
		}
		if len(p.Value.AllOf) == 1 && p.Value.AllOf[0].Value != nil { // a described $ref
			return p.Value.AllOf[0].Value
		}
		return p.Value
	}
	u := func(p *uint64) int64 {
		if p == nil {
			return -1
		}
		return int64(*p) //nolint:gosec // spec bounds are small
	}
	f := func(p *float64) int64 {
		if p == nil {
			return -1
		}
		return int64(*p)
	}
	perms := schema("Permissions")
	meta := schema("Metadata")
	credits := schema("Credits")
	for _, c := range []struct {
		what      string
		got, want int64
	}{
		{"CreateApiKeyRequest.name maxLength", u(prop(schema("CreateApiKeyRequest"), "name").MaxLength), maxNameLen},
		{"UpdateApiKeyRequest.name maxLength", u(prop(schema("UpdateApiKeyRequest"), "name").MaxLength), maxNameLen},
		{"Permissions maxProperties", u(perms.MaxProps), maxPermResources},
		{"Permissions' arrays maxItems", u(perms.AdditionalProperties.Schema.Value.MaxItems), maxPermActions},
		{"Permissions' actions maxLength", u(perms.AdditionalProperties.Schema.Value.Items.Value.MaxLength), maxPermActionLen},
		{"Metadata maxProperties", u(meta.MaxProps), maxMetadataKeys},
		{"Metadata's values maxLength", u(meta.AdditionalProperties.Schema.Value.MaxLength), maxMetadataValueLen},
		{"AllowedNetworks maxItems", u(schema("AllowedNetworks").MaxItems), maxNetworks},
		{"RateLimit.limit maximum", f(prop(schema("RateLimit"), "limit").Max), maxRateLimit},
		{"Credits.remaining maximum", f(prop(credits, "remaining").Max), maxCredits},
		{"CreditRefill.amount maximum", f(prop(schema("CreditRefill"), "amount").Max), maxCredits},
		{"UpdateApiKeyRequest.credits_add maximum", f(prop(schema("UpdateApiKeyRequest"), "credits_add").Max), maxCredits},
	} {
		if c.got != c.want {
			t.Errorf("%s: the spec says %d, check.go %d", c.what, c.got, c.want)
		}
	}
	for _, c := range []struct{ what, got, want string }{
		{"CreateApiKeyRequest.name pattern", prop(schema("CreateApiKeyRequest"), "name").Pattern, namePattern.String()},
		{"RateLimit.window pattern", prop(schema("RateLimit"), "window").Pattern, windowPattern.String()},
		{"Permissions' actions pattern", perms.AdditionalProperties.Schema.Value.Items.Value.Pattern, actionPattern.String()},
	} {
		if c.got != c.want {
			t.Errorf("%s: the spec says %q, check.go %q", c.what, c.got, c.want)
		}
	}
}
