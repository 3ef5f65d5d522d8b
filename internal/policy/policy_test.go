package policy_test

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/policy"
)

var (
	now     = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	hourOn  = now.Add(time.Hour)
	dayOn   = now.Add(24 * time.Hour)
	manage  = perm.FromList([]string{"account:api:key:create", "account:api:key:update", "payment:read"})
	onlyUpd = perm.FromList([]string{"account:api:key:update"})
)

func key(perms perm.Set, exp *time.Time) *auth.Principal {
	return &auth.Principal{Kind: keys.KindSecret, Mode: apikey.Sandbox, KeyID: "key_caller", Accounts: []string{"acct_a"}, Permissions: perms, ExpiresAt: exp}
}

func nets(s ...string) []netip.Prefix {
	out, err := apikey.ParseNetworks(s)
	if err != nil {
		panic(err)
	}
	return out
}

// netKey is a key holding manage, restricted to networks.
func netKey(networks ...string) *auth.Principal {
	p := key(manage, nil)
	p.AllowedNetworks = nets(networks...)
	return p
}

func rl(limit int, window string) *apikey.RateLimit {
	r, err := apikey.ParseRateLimit(limit, window)
	if err != nil {
		panic(err)
	}
	return r
}

func cr(remaining int64, refill *apikey.CreditRefill) *apikey.Credits {
	return &apikey.Credits{Remaining: remaining, Refill: refill}
}

func monthly(n int64) *apikey.CreditRefill {
	return &apikey.CreditRefill{Amount: n, Interval: apikey.RefillMonthly, Day: 1}
}

func daily(n int64) *apikey.CreditRefill {
	return &apikey.CreditRefill{Amount: n, Interval: apikey.RefillDaily}
}

// creditKey is a key holding manage, with credits.
func creditKey(remaining int64, refill *apikey.CreditRefill) *auth.Principal {
	p := key(manage, nil)
	p.Credits = cr(remaining, refill)
	return p
}

// rateKey is a key holding manage, with its own rate limit.
func rateKey(limit int, window string) *auth.Principal {
	p := key(manage, nil)
	p.RateLimit = rl(limit, window)
	return p
}

func TestAuthorize(t *testing.T) {
	jwt := &auth.Principal{Kind: keys.KindJWT, Mode: apikey.Sandbox, Subject: "jwt:ann", Accounts: []string{"acct_a"}, Permissions: manage}
	replaced := key(manage, nil)
	replaced.Replaced = true
	pub := key(manage, nil)
	pub.Kind = keys.KindPublishable
	payRead := perm.FromList([]string{"payment:read"})
	everything := perm.FromList([]string{"account:api:key:create", "account:api:key:update", "payment:read", "refund:create"})
	for _, c := range []struct {
		name   string
		p      *auth.Principal
		a      policy.Action
		t      policy.Target
		want   api.ErrorCode // 0: allowed
		detail string
	}{
		{"create within power and life", key(manage, &dayOn), policy.CreateKey, policy.Target{"acct_a", payRead, &hourOn, nil, nil, nil}, 0, ""},
		{"create at the caller's own expiry", key(manage, &dayOn), policy.CreateKey, policy.Target{"acct_a", payRead, &dayOn, nil, nil, nil}, 0, ""},
		{"create: power grows", key(manage, nil), policy.CreateKey, policy.Target{"acct_a", everything, nil, nil, nil, nil}, api.CodePrivilegeEscalation, "missing"},
		{"create: life grows (no expiry)", key(manage, &hourOn), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeLifetimeExceedsCaller, "max_expires_at"},
		{"create: life grows (later expiry)", key(manage, &hourOn), policy.CreateKey, policy.Target{"acct_a", payRead, &dayOn, nil, nil, nil}, api.CodeLifetimeExceedsCaller, "max_expires_at"},
		{"create: a JWT's exp does not bound", jwt, policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, 0, ""},
		{"create: a JWT's power does", jwt, policy.CreateKey, policy.Target{"acct_a", everything, nil, nil, nil, nil}, api.CodePrivilegeEscalation, "missing"},
		{"create: other account", key(manage, nil), policy.CreateKey, policy.Target{"acct_b", payRead, nil, nil, nil, nil}, api.CodeAccountForbidden, "account_id"},
		{"create: replaced secret", replaced, policy.CreateKey, policy.Target{"acct_a", perm.Set{}, nil, nil, nil, nil}, api.CodeReplacedSecret, ""},
		{"create: publishable", pub, policy.CreateKey, policy.Target{"acct_a", perm.Set{}, nil, nil, nil, nil}, api.CodePublishableKeyForbidden, ""},
		{"create: no create permission", key(onlyUpd, nil), policy.CreateKey, policy.Target{"acct_a", perm.Set{}, nil, nil, nil, nil}, api.CodePermissionDenied, "required"},
		{"regenerate within power", key(manage, nil), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, 0, ""},
		// Without account:api:key:read the 40302 lists nothing (TestMissingOnlyForReaders).
		{"regenerate: update alone cannot take the managed key", key(onlyUpd, nil), policy.RegenerateKey, policy.Target{"acct_a", everything, nil, nil, nil, nil}, api.CodePrivilegeEscalation, ""},
		{"regenerate: a JWT with update alone neither", &auth.Principal{Kind: keys.KindJWT, Accounts: []string{"acct_a"}, Permissions: onlyUpd}, policy.RegenerateKey, policy.Target{"acct_a", everything, nil, nil, nil, nil}, api.CodePrivilegeEscalation, ""},
		{"regenerate: key outlives the caller", key(manage, &hourOn), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeLifetimeEscalation, "credential_expires_at"},
		{"regenerate: key expires before the caller", key(manage, &dayOn), policy.RegenerateKey, policy.Target{"acct_a", payRead, &hourOn, nil, nil, nil}, 0, ""},
		{"regenerate: replaced secret", replaced, policy.RegenerateKey, policy.Target{"acct_a", perm.Set{}, nil, nil, nil, nil}, api.CodeReplacedSecret, ""},
		{"regenerate: other account is not found", key(manage, nil), policy.RegenerateKey, policy.Target{"acct_b", payRead, nil, nil, nil, nil}, api.CodeKeyNotFound, ""},
		{"create within the caller's rate", rateKey(100, "1m"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, rl(1, "1s"), nil}, 0, ""},
		{"create: a larger rate", rateKey(100, "1m"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, rl(2, "1s"), nil}, api.CodeRateLimitEscalation, "caller_rate_limit"},
		{"create: unlimited by a limited key", rateKey(100, "1m"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeRateLimitEscalation, "caller_rate_limit"},
		{"create limited by an unlimited key", key(manage, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, rl(1000000, "1s"), nil}, 0, ""},
		{"regenerate: an unlimited key by a limited one", rateKey(100, "1m"), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeRateLimitEscalation, ""},
		{"create within the caller's networks", netKey("10.0.0.0/8"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nets("10.1.0.0/16", "10.2.3.4/32"), nil, nil}, 0, ""},
		{"create: networks widen", netKey("10.0.0.0/8"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nets("10.0.0.0/7"), nil, nil}, api.CodeNetworkEscalation, "caller_allowed_networks"},
		{"create: unrestricted by a restricted key", netKey("10.0.0.0/8"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeNetworkEscalation, "caller_allowed_networks"},
		{"create: the other family", netKey("10.0.0.0/8"), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nets("::ffff:0:0/96"), nil, nil}, api.CodeNetworkEscalation, ""},
		{"create restricted by an unrestricted key", key(manage, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nets("192.0.2.0/24"), nil, nil}, 0, ""},
		{"regenerate: an unrestricted key by a restricted one", netKey("10.0.0.0/8"), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeNetworkEscalation, ""},
		{"regenerate within the caller's networks", netKey("10.0.0.0/8", "2001:db8::/32"), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nets("2001:db8:1::/48"), nil, nil}, 0, ""},
		{"create within the caller's credits", creditKey(100, monthly(100)), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(100, monthly(100))}, 0, ""},
		{"create: more credits", creditKey(100, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(101, nil)}, api.CodeCreditEscalation, "caller_credits"},
		{"create: no credits by a metered key", creditKey(100, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeCreditEscalation, "caller_credits"},
		{"create: a refill by a key without one", creditKey(100, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(1, monthly(1))}, api.CodeCreditEscalation, ""},
		{"create: a larger refill", creditKey(100, monthly(100)), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(1, monthly(101))}, api.CodeCreditEscalation, ""},
		{"create: a more frequent refill", creditKey(100, monthly(100)), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(1, daily(1))}, api.CodeCreditEscalation, ""},
		{"create: a less frequent refill", creditKey(100, daily(100)), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(1, monthly(100))}, 0, ""},
		{"create metered by an unmetered key", key(manage, nil), policy.CreateKey, policy.Target{"acct_a", payRead, nil, nil, nil, cr(1_000_000_000_000, daily(1_000_000_000_000))}, 0, ""},
		{"regenerate: an unmetered key by a metered one", creditKey(100, nil), policy.RegenerateKey, policy.Target{"acct_a", payRead, nil, nil, nil, nil}, api.CodeCreditEscalation, "caller_credits"},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := policy.Authorize(c.p, c.a, c.t)
			switch {
			case c.want == 0 && e != nil:
				t.Fatalf("refused: %v", e)
			case c.want != 0 && (e == nil || e.Code != c.want):
				t.Fatalf("got %v, want code %d", e, c.want)
			case c.detail != "" && e.Details[c.detail] == nil:
				t.Fatalf("details %v lack %q", e.Details, c.detail)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	cur, prev := []byte("current-hash"), []byte("previous-hash")
	base := apikey.Key{ID: "key_caller", AccountID: "acct_a", SecretHash: cur, PrevSecretHash: prev, PrevSecretExpiresAt: &hourOn,
		Status: apikey.StatusActive, Permissions: map[string][]string{"payment": {"read"}}, ExpiresAt: &dayOn}
	p := func(hash []byte) *auth.Principal {
		return &auth.Principal{Kind: keys.KindSecret, KeyID: "key_caller", SecretHash: hash, Permissions: manage, ClientIP: "203.0.113.9"}
	}
	for _, c := range []struct {
		name     string
		hash     []byte
		edit     func(*apikey.Key)
		at       time.Time
		want     api.ErrorCode
		replaced bool
	}{
		{"current secret", cur, nil, now, 0, false},
		{"previous secret in its grace", prev, nil, now, 0, true},
		{"previous secret after its grace", prev, nil, hourOn, api.CodeInvalidCredentials, false},
		{"rotated away meanwhile", []byte("older"), nil, now, api.CodeInvalidCredentials, false},
		{"disabled meanwhile", cur, func(k *apikey.Key) { k.Status = apikey.StatusInactive }, now, api.CodeInvalidCredentials, false},
		{"deleted meanwhile", cur, func(k *apikey.Key) { k.Deleted = true }, now, api.CodeInvalidCredentials, false},
		{"expired meanwhile", cur, nil, dayOn, api.CodeExpiredCredentials, false},
		{"another key's row", cur, func(k *apikey.Key) { k.ID = "key_other" }, now, api.CodeInvalidCredentials, false},
		{"restricted to networks meanwhile", cur, func(k *apikey.Key) { k.AllowedNetworks = nets("192.0.2.0/24") }, now, api.CodeInvalidCredentials, false},
		{"restricted to networks holding the client", cur, func(k *apikey.Key) { k.AllowedNetworks = nets("203.0.113.0/24") }, now, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			k := base
			if c.edit != nil {
				c.edit(&k)
			}
			q, err := policy.Current(p(c.hash), &k, c.at)
			if c.want != 0 {
				var ae *apierr.Error
				if !errors.As(err, &ae) || q != nil || ae.Code != c.want {
					t.Fatalf("got %v, %v; want code %d", q, err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The re-read key, not the authenticated principal, decides.
			if q.Replaced != c.replaced || !q.Permissions.Has("payment:read") || q.Permissions.Has("account:api:key:create") || q.ExpiresAt != k.ExpiresAt {
				t.Fatalf("principal %+v", q)
			}
		})
	}
}

// TestPermissionsMatchSpec holds the policy's action permissions to the
// operations' x-hsrcpay-permission in openapi.yaml.
func TestPermissionsMatchSpec(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromFile("../../openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	declared, err := perm.OperationPermissions(doc)
	if err != nil {
		t.Fatal(err)
	}
	ops := map[policy.Action]string{
		policy.CreateKey: "createApiKey", policy.RegenerateKey: "regenerateApiKey", policy.UpdateKey: "updateApiKey",
		policy.DeleteKey: "deleteApiKey", policy.ReadKeys: "getApiKey", policy.ReadAudit: "listAuditEvents",
		policy.VerifyKey: "verifyApiKey",
	}
	for action, op := range ops {
		if policy.Permissions[action] != declared[op] {
			t.Errorf("policy %s needs %q, the spec's %s declares %q", action, policy.Permissions[action], op, declared[op])
		}
	}
	if len(ops) != len(policy.Permissions) {
		t.Errorf("policy.Permissions has %d actions, this test knows %d: hold the new one to its operation", len(policy.Permissions), len(ops))
	}
}

// TestVerify: the verify action needs its own permission and refuses what
// manages nothing (publishable keys, replaced secrets) like the reads; what a
// caller may learn through it is its accounts' keys in its own mode.
func TestVerify(t *testing.T) {
	need := policy.Permissions[policy.VerifyKey]
	verifier := key(perm.FromList([]string{need}), nil)
	replaced := key(perm.FromList([]string{need}), nil)
	replaced.Replaced = true
	pub := key(perm.FromList([]string{need}), nil)
	pub.Kind = keys.KindPublishable
	for _, c := range []struct {
		name string
		p    *auth.Principal
		want api.ErrorCode
	}{
		{"holds account:api:key:verify", verifier, 0},
		{"lacks it", key(manage, nil), api.CodePermissionDenied},
		{"publishable", pub, api.CodePublishableKeyForbidden},
		{"replaced secret", replaced, api.CodeReplacedSecret},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := policy.CheckOperation(c.p, need)
			if (c.want == 0) != (e == nil) || e != nil && e.Code != c.want {
				t.Fatalf("got %v, want code %d", e, c.want)
			}
		})
	}
	jwt := &auth.Principal{Kind: keys.KindJWT, Mode: apikey.Live, Subject: "jwt:svc", Accounts: []string{"acct_a", "acct_b"}}
	for _, c := range []struct {
		name string
		p    *auth.Principal
		mode apikey.Mode
		acct string
		want bool
	}{
		{"own account and mode", verifier, apikey.Sandbox, "acct_a", true},
		{"another account", verifier, apikey.Sandbox, "acct_b", false},
		{"the other mode", verifier, apikey.Live, "acct_a", false},
		{"a JWT's second account", jwt, apikey.Live, "acct_b", true},
		{"a JWT's account in the other mode", jwt, apikey.Sandbox, "acct_a", false},
		{"an account no JWT claim names", jwt, apikey.Live, "acct_c", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := policy.Verifies(c.p, c.mode, &apikey.Key{AccountID: c.acct}); got != c.want {
				t.Fatalf("Verifies = %v, want %v", got, c.want)
			}
		})
	}
}

// TestMissingOnlyForReaders: a 40302 about an existing key lists the key's
// permissions the caller lacks only to a caller that may read keys; create
// always lists them (they are the caller's own request).
func TestMissingOnlyForReaders(t *testing.T) {
	everything := perm.FromList([]string{"account:api:key:create", "account:api:key:update", "account:api:key:delete", "account:api:key:read", "refund:create"})
	updRead := perm.FromList([]string{"account:api:key:update", "account:api:key:read"})
	delOnly := perm.FromList([]string{"account:api:key:delete"})
	for _, c := range []struct {
		name  string
		p     *auth.Principal
		a     policy.Action
		shown bool
	}{
		{"update by a reader", key(updRead, nil), policy.UpdateKey, true},
		{"update by a non-reader", key(onlyUpd, nil), policy.UpdateKey, false},
		{"regenerate by a reader", key(updRead, nil), policy.RegenerateKey, true},
		{"regenerate by a non-reader", key(onlyUpd, nil), policy.RegenerateKey, false},
		{"delete by a non-reader", key(delOnly, nil), policy.DeleteKey, false},
		{"create by a non-reader", key(perm.FromList([]string{"account:api:key:create"}), nil), policy.CreateKey, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := policy.Authorize(c.p, c.a, policy.Target{AccountID: "acct_a", Permissions: everything})
			if e == nil || e.Code != api.CodePrivilegeEscalation {
				t.Fatalf("got %v, want 40302", e)
			}
			if _, has := e.Details["missing"]; has != c.shown {
				t.Fatalf("details %v: missing shown %v, want %v", e.Details, has, c.shown)
			}
		})
	}
}

// TestMayTakeAway: the managed secret key (the account's root credential)
// is never switched off, shortened or revoked by any credential, but may be
// rotated; a managed publishable key may be switched off, never shortened
// or revoked; a custom key loses anything.
func TestMayTakeAway(t *testing.T) {
	root := &apikey.Key{Managed: true, Type: apikey.TypeSecret}
	pub := &apikey.Key{Managed: true, Type: apikey.TypePublishable}
	custom := &apikey.Key{Type: apikey.TypeSecret}
	for _, c := range []struct {
		name string
		k    *apikey.Key
		l    policy.Loss
		want api.ErrorCode
	}{
		{"root: disable", root, policy.Disable, api.CodeManagedKeyFixed},
		{"root: shorten", root, policy.Shorten, api.CodeManagedKeyFixed},
		{"root: revoke", root, policy.Revoke, api.CodeManagedKeyNotDeletable},
		{"root: rotate", root, policy.Rotate, 0},
		{"managed publishable: disable", pub, policy.Disable, 0},
		{"managed publishable: shorten", pub, policy.Shorten, api.CodeManagedKeyFixed},
		{"managed publishable: revoke", pub, policy.Revoke, api.CodeManagedKeyNotDeletable},
		{"managed publishable: rotate", pub, policy.Rotate, 0},
		{"custom: disable", custom, policy.Disable, 0},
		{"custom: shorten", custom, policy.Shorten, 0},
		{"custom: revoke", custom, policy.Revoke, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := policy.MayTakeAway(c.k, c.l)
			if (c.want == 0) != (e == nil) || e != nil && e.Code != c.want {
				t.Fatalf("got %v, want code %d", e, c.want)
			}
		})
	}
	if !policy.Root(root) || policy.Root(pub) || policy.Root(custom) {
		t.Fatal("Root: only the managed secret key is the root credential")
	}
}

// TestViewFor: a write answered to a caller without account:api:key:read
// shows no metadata it did not set and no last use; a reader sees the key
// as stored; the key itself is not changed.
func TestViewFor(t *testing.T) {
	ip := "203.0.113.7"
	stored := &apikey.Key{ID: "key_t", Name: "t", Status: apikey.StatusActive, Metadata: map[string]string{"team": "a"},
		LastUsedAt: &now, LastUsedIP: &ip, Permissions: map[string][]string{"payment": {"read"}}, ExpiresAt: &dayOn}
	reader := key(perm.FromList([]string{"account:api:key:update", "account:api:key:read"}), nil)
	for _, c := range []struct {
		name      string
		p         *auth.Principal
		wroteMeta bool
		meta      map[string]string
		lastUse   bool
	}{
		{"reader", reader, false, stored.Metadata, true},
		{"non-reader, metadata untouched", key(onlyUpd, nil), false, map[string]string{}, false},
		{"non-reader that set the metadata", key(onlyUpd, nil), true, stored.Metadata, false},
		{"a JWT without read", &auth.Principal{Kind: keys.KindJWT, Accounts: []string{"acct_a"}, Permissions: onlyUpd}, false, map[string]string{}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			v := policy.ViewFor(c.p, stored, c.wroteMeta)
			if len(v.Metadata) != len(c.meta) || v.Metadata == nil || v.Metadata["team"] != c.meta["team"] {
				t.Fatalf("metadata %v, want %v", v.Metadata, c.meta)
			}
			if (v.LastUsedAt != nil) != c.lastUse || (v.LastUsedIP != nil) != c.lastUse {
				t.Fatalf("last use %v %v shown, want %v", v.LastUsedAt, v.LastUsedIP, c.lastUse)
			}
			if v.ID != stored.ID || v.Name != stored.Name || v.Status != stored.Status || v.ExpiresAt != stored.ExpiresAt || len(v.Permissions) != 1 {
				t.Fatalf("view %+v lost what the write confirms", v)
			}
		})
	}
	if stored.LastUsedIP == nil || stored.Metadata["team"] != "a" {
		t.Fatal("ViewFor changed the stored key")
	}
}
