package client_test

// What a newcomer met (issue 21), through the client against a real server:
// enums that compare with this package's constants, errors that say which
// field and which permission, a zero Client that refuses instead of
// panicking, a hint for a base URL without /v1, and the spec's requirements
// on a request checked before it is sent.

import (
	"errors"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
)

func TestNewcomerStatusComparesWithConstants(t *testing.T) {
	_, _, c := lifecycleEnv(t, "acct_newcomer")
	key := create(t, c, "acct_newcomer", "status compare", client.Permissions{"payment": {"read"}})
	// Both the created key and its view have a KeyStatus and a KeyType.
	if key.Status != client.StatusActive || key.Type != client.TypeSecret {
		t.Fatalf("created key: status %q type %q", key.Status, key.Type)
	}
	view, err := c.UpdateAPIKey(ctx, key.ID, client.Disable())
	if err != nil || view.Status != client.StatusInactive {
		t.Fatalf("disable: %v %+v", err, view)
	}
}

func TestNewcomerErrorsNameTheFieldAndTheDetails(t *testing.T) {
	_, _, c := lifecycleEnv(t, "acct_newcomer_err")
	// 422 with details.unknown: the permission that is not in the catalog.
	_, err := c.CreateAPIKey(ctx, "acct_newcomer_err", client.CreateAPIKeyRequest{Name: "typo",
		Permissions: client.Permissions{"payment": {"explode"}}})
	ae := requireAPIError(t, "unknown permission", err, client.ErrUnprocessable, client.CodeUnknownPermission)
	if msg := err.Error(); !strings.Contains(msg, `unknown=["payment:explode"]`) || !strings.Contains(msg, "request_id="+ae.RequestID) {
		t.Errorf("Error() = %q, want the unknown permission and the request id", msg)
	}
	// 400 with a failing field: a status filter the spec does not list.
	_, err = c.ListAPIKeysPage(ctx, "acct_newcomer_err", client.ListAPIKeysOptions{Status: client.KeyStatus("active")})
	ae = requireAPIError(t, "bad status filter", err, client.ErrInvalidRequest, client.CodeValidationFailed)
	if len(ae.Fields) == 0 {
		t.Fatalf("no fields in %+v", ae)
	}
	if msg, f := err.Error(), ae.Fields[0]; !strings.Contains(msg, string(f.Location)+" "+f.Field+": "+f.Reason) || !strings.Contains(msg, "query status") {
		t.Errorf("Error() = %q, want the field %+v", msg, f)
	}
}

func TestNewcomerZeroClientRefuses(t *testing.T) {
	var zero client.Client
	var nilClient *client.Client
	for _, c := range []*client.Client{&zero, nilClient} {
		if _, err := c.GetAPIKey(ctx, "key_x"); !errors.Is(err, client.ErrNotConfigured) {
			t.Errorf("GetAPIKey on %v: %v, want ErrNotConfigured", c, err)
		}
		if _, err := c.CreateAPIKey(ctx, "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}); !errors.Is(err, client.ErrNotConfigured) {
			t.Errorf("CreateAPIKey: %v", err)
		}
		if _, err := c.VerifyKey(ctx, "sk_test_x"); !errors.Is(err, client.ErrNotConfigured) {
			t.Errorf("VerifyKey: %v", err)
		}
		if _, err := client.Collect(c.ListAPIKeys(ctx, "acct", client.ListAPIKeysOptions{})); !errors.Is(err, client.ErrNotConfigured) {
			t.Errorf("ListAPIKeys: %v", err)
		}
		if c.Raw() != nil {
			t.Error("Raw of an unconfigured client is not nil")
		}
	}
}

func TestNewcomerBaseURLWithoutV1(t *testing.T) {
	e, m, _ := lifecycleEnv(t, "acct_newcomer_url")
	c, err := client.New(e.Root, m.Secret)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAPIKey(ctx, m.SecretID)
	ae := requireAPIError(t, "no /v1", err, client.ErrNotFound, client.CodeRouteNotFound)
	if !strings.Contains(ae.Hint, "should end in /v1") || !strings.Contains(err.Error(), "hint: the base URL "+e.Root+" should end in /v1") {
		t.Errorf("hint %q, Error() %q", ae.Hint, err)
	}
	// With /v1, an unknown key is 40400 and no hint.
	_, err = e.Client(m.Secret).GetAPIKey(ctx, "key_unknown0000")
	if ae := requireAPIError(t, "with /v1", err, client.ErrNotFound, client.CodeKeyNotFound); ae.Hint != "" {
		t.Errorf("hint %q on a right base URL", ae.Hint)
	}
}

// What the spec requires of a request is refused before sending, as an
// ArgumentError naming the field; the server refuses the same bodies.
func TestNewcomerRequestsCheckedBeforeSending(t *testing.T) {
	_, _, c := lifecycleEnv(t, "acct_newcomer_chk")
	long := strings.Repeat("n", 101)
	many := client.Permissions{}
	for i := range 33 {
		many[string(rune('a'+i%26))+strings.Repeat("x", i)] = []string{"read"}
	}
	meta := client.Metadata{}
	for i := range 21 {
		meta[strings.Repeat("k", i+1)] = "v"
	}
	for _, tc := range []struct {
		what, field string
		req         client.CreateAPIKeyRequest
	}{
		{"nil permissions", "CreateAPIKeyRequest.Permissions", client.CreateAPIKeyRequest{Name: "n"}},
		{"no name", "CreateAPIKeyRequest.Name", client.CreateAPIKeyRequest{Permissions: client.Permissions{}}},
		{"long name", "CreateAPIKeyRequest.Name", client.CreateAPIKeyRequest{Name: long, Permissions: client.Permissions{}}},
		{"control character", "CreateAPIKeyRequest.Name", client.CreateAPIKeyRequest{Name: "a\nb", Permissions: client.Permissions{}}},
		{"33 resources", "CreateAPIKeyRequest.Permissions", client.CreateAPIKeyRequest{Name: "n", Permissions: many}},
		{"bad action", `CreateAPIKeyRequest.Permissions["payment"]`, client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{"payment": {"Read"}}}},
		{"twice", `CreateAPIKeyRequest.Permissions["payment"]`, client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{"payment": {"read", "read"}}}},
		{"21 metadata keys", "CreateAPIKeyRequest.Metadata", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}, Metadata: &meta}},
	} {
		_, err := c.CreateAPIKey(ctx, "acct_newcomer_chk", tc.req)
		var arg *client.ArgumentError
		if !errors.As(err, &arg) || arg.Name != tc.field || !errors.Is(err, client.ErrInvalidArgument) {
			t.Errorf("%s: %v, want an ArgumentError about %s", tc.what, err, tc.field)
		}
	}
	// The same requests, sent raw, the server refuses: the checks hold no
	// more than the spec.
	for _, body := range []string{`{"name":"n","permissions":null}`, `{"permissions":{}}`, `{"name":"` + long + `","permissions":{}}`,
		`{"name":"n","permissions":{"payment":["Read"]}}`, `{"name":"n","permissions":{"payment":["read","read"]}}`} {
		res, err := c.Raw().CreateAPIKeyWithBodyWithResponse(ctx, &oapi.CreateAPIKeyParams{AccountID: "acct_newcomer_chk"},
			"application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		wantAPIError(t, body, client.ParseError(res.HTTPResponse, res.Body), client.ErrInvalidRequest, client.CodeValidationFailed)
	}
	// And what the spec allows passes: no permissions at all.
	if _, err := c.CreateAPIKey(ctx, "acct_newcomer_chk", client.CreateAPIKeyRequest{Name: "empty", Permissions: client.Permissions{}}); err != nil {
		t.Errorf("Permissions{}: %v", err)
	}
	// An update with no field.
	if _, err := c.UpdateAPIKey(ctx, "key_x", client.UpdateAPIKeyRequest{}); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("empty update: %v", err)
	}
}
