package server_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// TestAllowedNetworks (issue 22): a key restricted to networks works only
// from client addresses inside them (the trusted-proxy rule's address), is
// refused elsewhere exactly as an unknown key, is NETWORK_NOT_ALLOWED to
// verify outside them, and creates or changes only keys restricted to
// subsets of them; every change is in the audit trail. On SQLite and
// PostgreSQL, through the Go client; loopback is a trusted proxy, so that
// X-Forwarded-For names the client.
func TestAllowedNetworks(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		cfg.TrustedProxies = []string{"127.0.0.0/8", "::1/128"}
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		root := env.Client(m.Secret)
		const inside, inside6, outside = "10.1.2.3", "2001:db8::7", "192.0.2.1"

		admin := mustCreate(t, root, client.CreateAPIKeyRequest{Name: "net admin", Permissions: client.Permissions{
			"account:api:key": {"create", "read", "update", "delete", "verify"}, "payment": {"read"},
		}, AllowedNetworks: &[]string{"2001:db8::/32", "10.1.2.3/8", "10.9.0.0/16"}})
		if admin.AllowedNetworks == nil || !slices.Equal(*admin.AllowedNetworks, []string{"10.0.0.0/8", "2001:db8::/32"}) {
			t.Fatalf("allowed_networks %v, want the canonical [10.0.0.0/8 2001:db8::/32]", admin.AllowedNetworks)
		}
		sibling := customKey(t, env, m, "unrestricted sibling", client.Permissions{"payment": {"read"}}, nil)
		if sibling.AllowedNetworks != nil {
			t.Fatalf("an unrestricted key shows allowed_networks %v", *sibling.AllowedNetworks)
		}

		t.Run("requests from inside work, from outside are an unknown key's 401", func(t *testing.T) {
			for _, addr := range []string{inside, inside6} {
				if _, err := clientFrom(t, env, admin.Key, addr).GetAPIKey(ctx, admin.ID); err != nil {
					t.Fatalf("from %s: %v", addr, err)
				}
			}
			_, err := clientFrom(t, env, admin.Key, outside).GetAPIKey(ctx, admin.ID)
			refused := requireAPIError(t, err, 401, client.CodeInvalidCredentials)
			_, err = clientFrom(t, env, forged(t, keys.KindSecret, true), outside).GetAPIKey(ctx, admin.ID)
			unknown := requireAPIError(t, err, 401, client.CodeInvalidCredentials)
			if refused.Message != unknown.Message || len(refused.Details) != len(unknown.Details) {
				t.Fatalf("outside the networks %+v, an unknown key %+v: tell apart", refused, unknown)
			}
		})

		var child *client.APIKey
		t.Run("creates only keys restricted to subsets of its networks", func(t *testing.T) {
			from := clientFrom(t, env, admin.Key, inside)
			for _, nets := range [][]string{nil, {"0.0.0.0/0"}, {"10.0.0.0/7"}, {"10.0.0.0/8", "192.0.2.0/24"}} {
				req := client.CreateAPIKeyRequest{Name: "too wide", Permissions: client.Permissions{}}
				if nets != nil {
					req.AllowedNetworks = &nets
				}
				_, err := from.CreateAPIKey(ctx, acct, req)
				ae := requireAPIError(t, err, 403, client.CodeNetworkEscalation)
				if !slices.Equal(toStrings(ae.Details["caller_allowed_networks"]), []string{"10.0.0.0/8", "2001:db8::/32"}) {
					t.Fatalf("details %v", ae.Details)
				}
			}
			child = mustCreate(t, from, client.CreateAPIKeyRequest{Name: "child", Permissions: client.Permissions{"payment": {"read"}},
				AllowedNetworks: &[]string{"10.1.0.0/16", "2001:db8:1::/48"}})
			if !slices.Equal(*child.AllowedNetworks, []string{"10.1.0.0/16", "2001:db8:1::/48"}) {
				t.Fatalf("child networks %v", *child.AllowedNetworks)
			}
		})

		t.Run("changes only keys within its networks, and never widens them", func(t *testing.T) {
			from := clientFrom(t, env, admin.Key, inside)
			_, err := updateKey(t, from, sibling.ID, client.UpdateAPIKeyRequest{Name: ptr("renamed by a restricted key")})
			wantAPIError(t, err, 403, client.CodeNetworkEscalation)
			_, err = deleteKey(t, from, sibling.ID)
			wantAPIError(t, err, 403, client.CodeNetworkEscalation)
			for _, nets := range [][]string{{}, {"192.0.2.0/24"}, {"10.0.0.0/7"}} {
				_, err = updateKey(t, from, child.ID, client.UpdateAPIKeyRequest{AllowedNetworks: &nets})
				wantAPIError(t, err, 403, client.CodeNetworkEscalation)
			}
			got, err := updateKey(t, from, child.ID, client.UpdateAPIKeyRequest{AllowedNetworks: &[]string{"10.2.0.0/16"}})
			if err != nil || got.AllowedNetworks == nil || !slices.Equal(*got.AllowedNetworks, []string{"10.2.0.0/16"}) {
				t.Fatalf("narrowing within its own: %v, %+v", err, got)
			}
			// An unrestricted caller lifts the restriction.
			got, err = updateKey(t, root, child.ID, client.UpdateAPIKeyRequest{AllowedNetworks: &[]string{}})
			if err != nil || got.AllowedNetworks != nil {
				t.Fatalf("lifting: %v, %+v", err, got)
			}
		})

		t.Run("verify: NETWORK_NOT_ALLOWED outside, or without client_ip", func(t *testing.T) {
			v, err := root.VerifyKey(ctx, admin.Key, client.ClientIP(inside))
			if err != nil || v.Code != client.VerifyValid {
				t.Fatalf("inside: %v, %+v", err, v)
			}
			for _, opts := range [][]client.VerifyOption{{client.ClientIP(outside)}, nil, {client.ClientIP("::ffff:192.0.2.1")}} {
				v, err = root.VerifyKey(ctx, admin.Key, opts...)
				if err != nil || v.Code != client.VerifyNetworkNotAllowed || v.Valid || v.ID != admin.ID {
					t.Fatalf("outside: %v, %+v", err, v)
				}
			}
			v, err = root.VerifyKey(ctx, sibling.Key, client.ClientIP(outside))
			if err != nil || v.Code != client.VerifyValid {
				t.Fatalf("an unrestricted key: %v, %+v", err, v)
			}
			var argErr *client.ArgumentError
			if _, err := root.VerifyKey(ctx, admin.Key, client.ClientIP("not-an-ip")); !errors.As(err, &argErr) {
				t.Fatalf("a client_ip that is no address: %v", err)
			}
			bad := "1.2.3"
			res, err := root.Raw().VerifyAPIKeyWithResponse(ctx, oapi.VerifyAPIKeyRequest{Key: admin.Key, ClientIP: &bad})
			if err != nil {
				t.Fatal(err)
			}
			wantAPIError(t, answer(res.HTTPResponse, res.Body), 400, client.CodeValidationFailed)
		})

		t.Run("bad networks are the request's 400", func(t *testing.T) {
			many := make([]string, 33)
			for i := range many {
				many[i] = fmt.Sprintf("10.0.%d.0/24", i)
			}
			for _, nets := range [][]string{{"10.0.0.0/33"}, {"2001:db8::/129"}, {"fe80::1%eth0"}, {"10.0.0.1/8/1"}, {"example.com"},
				{"10.0.0.0/8", "10.0.0.0/8"}, many} {
				req := client.CreateAPIKeyRequest{Name: "bad networks", Permissions: client.Permissions{}, AllowedNetworks: &nets}
				_, err := createUnchecked(t, root, acct, req)
				wantAPIError(t, err, 400, client.CodeValidationFailed)
			}
		})

		t.Run("the root is never restricted", func(t *testing.T) {
			_, err := updateKey(t, root, m.SecretID, client.UpdateAPIKeyRequest{AllowedNetworks: &[]string{"127.0.0.0/8"}})
			wantAPIError(t, err, 422, client.CodeManagedKeyFixed)
		})

		t.Run("narrowing the caller's own networks refuses it at once", func(t *testing.T) {
			if _, err := updateKey(t, root, admin.ID, client.UpdateAPIKeyRequest{AllowedNetworks: &[]string{"192.0.2.0/24"}}); err != nil {
				t.Fatal(err)
			}
			_, err := clientFrom(t, env, admin.Key, inside).GetAPIKey(ctx, admin.ID)
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
			if _, err := clientFrom(t, env, admin.Key, outside).GetAPIKey(ctx, admin.ID); err != nil {
				t.Fatalf("from its new network: %v", err)
			}
		})

		t.Run("every change is audited", func(t *testing.T) {
			var seen [][]string
			for _, e := range auditAll(t, root, acct) {
				if e.KeyID != child.ID && e.KeyID != admin.ID {
					continue
				}
				if n, ok := e.Changes["allowed_networks"]; ok {
					seen = append(seen, toStrings(n))
				}
			}
			// Newest first: admin narrowed, child lifted, child narrowed, child created, admin created.
			want := [][]string{{"192.0.2.0/24"}, {}, {"10.2.0.0/16"}, {"10.1.0.0/16", "2001:db8:1::/48"}, {"10.0.0.0/8", "2001:db8::/32"}}
			if len(seen) != len(want) {
				t.Fatalf("allowed_networks changes %v, want %v", seen, want)
			}
			for i := range want {
				if !slices.Equal(seen[i], want[i]) {
					t.Fatalf("allowed_networks changes %v, want %v", seen, want)
				}
			}
		})
	})
}
