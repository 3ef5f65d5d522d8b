package server

import (
	"bytes"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
)

// The fingerprint binds the exact credential (issue 17): a JWT by its
// issuer, subject, mode, jti, accounts and permissions, in any order the
// token lists them; a key by its id and secret hash only.
func TestFingerprintBindsTheExactCredential(t *testing.T) {
	fp := func(p *auth.Principal) []byte {
		t.Helper()
		req := httptest.NewRequest("POST", "/v1/api-keys/?account_id=acct_a", strings.NewReader(`{"name":"n"}`))
		b, err := fingerprint(req, p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jwt := func(edit func(*auth.Principal)) *auth.Principal {
		p := &auth.Principal{Kind: keys.KindJWT, Mode: apikey.Sandbox, Issuer: "https://issuer/", Subject: "jwt:ops", TokenID: "t1",
			Accounts: []string{"acct_a", "acct_b"}, Permissions: perm.FromList([]string{"account:api:key:create", "payment:read"})}
		if edit != nil {
			edit(p)
		}
		return p
	}
	base := fp(jwt(nil))
	same := map[string]func(*auth.Principal){
		"accounts in another order": func(p *auth.Principal) { p.Accounts = []string{"acct_b", "acct_a"} },
		"an account twice":          func(p *auth.Principal) { p.Accounts = []string{"acct_a", "acct_b", "acct_a"} },
		"another request id":        func(p *auth.Principal) { p.RequestID = "req_other" },
	}
	for what, edit := range same {
		if !bytes.Equal(fp(jwt(edit)), base) {
			t.Errorf("%s: another fingerprint; want the same", what)
		}
	}
	differ := map[string]func(*auth.Principal){
		"another issuer":     func(p *auth.Principal) { p.Issuer = "https://other/" },
		"another subject":    func(p *auth.Principal) { p.Subject = "jwt:eve" },
		"another jti":        func(p *auth.Principal) { p.TokenID = "t2" },
		"no jti":             func(p *auth.Principal) { p.TokenID = "" },
		"another mode":       func(p *auth.Principal) { p.Mode = apikey.Live },
		"fewer permissions":  func(p *auth.Principal) { p.Permissions = perm.FromList([]string{"account:api:key:create"}) },
		"more accounts":      func(p *auth.Principal) { p.Accounts = append(p.Accounts, "acct_c") },
		"accounts as grants": func(p *auth.Principal) { p.Accounts, p.Permissions = nil, perm.FromList([]string{"acct_a", "acct_b"}) },
	}
	for what, edit := range differ {
		if bytes.Equal(fp(jwt(edit)), base) {
			t.Errorf("%s: the same fingerprint; want another", what)
		}
	}
	key := func(id string, hash []byte, perms ...string) *auth.Principal {
		return &auth.Principal{Kind: keys.KindSecret, Mode: apikey.Sandbox, Subject: id, KeyID: id, SecretHash: hash,
			Accounts: []string{"acct_a"}, Permissions: perm.FromList(perms)}
	}
	k := fp(key("key_1", []byte("h1"), "account:api:key:create"))
	if !bytes.Equal(fp(key("key_1", []byte("h1"))), k) {
		t.Error("a key's grants are in its fingerprint; they are re-read by AuthorizeReplay instead")
	}
	if bytes.Equal(fp(key("key_1", []byte("h2"), "account:api:key:create")), k) || bytes.Equal(fp(key("key_2", []byte("h1"), "account:api:key:create")), k) {
		t.Error("another secret or key id has the same fingerprint")
	}
}
