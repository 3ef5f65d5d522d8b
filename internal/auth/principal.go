// Package auth turns a bearer token into a Principal: who is calling, in
// which mode, on which accounts, with which permissions.
package auth

import (
	"context"
	"net/netip"
	"slices"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind keys.Kind // KindJWT, KindSecret or KindPublishable
	Mode apikey.Mode
	// Subject identifies the credential: the key id, or "jwt:" + sub.
	Subject string
	// KeyID is set for API keys.
	KeyID string
	// Issuer and TokenID are a JWT's iss and jti (TokenID "" when the token
	// has none); empty for keys. Nothing authorizes by them: they tell one
	// token from another of the same subject, so that an Idempotency-Key's
	// stored answer goes only to the exact credential that made it.
	Issuer, TokenID string
	// Accounts the caller may act on: its own for a key, the claim's for a JWT.
	Accounts    []string
	Permissions perm.Set
	// ExpiresAt is when a key credential stops working (nil: never). It stays
	// nil for JWTs: a token is a session of a person whose grants outlive it,
	// so its exp does not bound the keys it creates (the policy's life rule).
	ExpiresAt *time.Time
	// AllowedNetworks are the client addresses a key credential works from
	// (nil: any); always nil for JWTs. The policy's network rule bounds
	// what the caller creates and changes by them.
	AllowedNetworks []netip.Prefix
	// RateLimit is a key credential's own request budget (nil: its mode's
	// default; always nil for JWTs): the budget its requests spend, and the
	// policy's bound on the limits of the keys it creates and changes.
	RateLimit *apikey.RateLimit
	// Credits are a key credential's usage credits as its key was re-read
	// in a unit of work, at the unit's clock (policy.Current sets them;
	// nil: none, always for JWTs, and before any re-read: the count changes
	// with every verify, so no cached copy bounds anything): the policy's
	// bound on the credits of the keys it creates and changes (rule 24).
	// Its own requests spend none.
	Credits *apikey.Credits
	// Replaced is set when a key presented its previous secret (the one a
	// rotation replaced): such a secret manages nothing. Inside the
	// rotation's grace period it authenticates (GraceEnded false) and every
	// key-management operation refuses it (403 40304).
	Replaced bool
	// GraceEnded is set, with Replaced, for a previous secret whose grace
	// ended (or that had none): it authenticates nothing. Such a principal is
	// never the result of an authentication; it is only made (Failure.
	// Replaced) for the one documented exception, the replay of the stored
	// answer of its own key's rotation (policy.OwnRotation), and every
	// operation refuses it with the same 401 as its failed authentication.
	GraceEnded bool
	// SecretHash is the hash of the secret presented, so that the policy can
	// re-check it inside a write transaction. Never logged.
	SecretHash []byte
	// RequestID is the request this principal made, recorded with what it
	// creates; ClientIP is where it came from (audit events).
	RequestID string
	ClientIP  string

	// keyAccount holds a key's one account, which Accounts is then a
	// slice of (principal).
	keyAccount [1]string
}

// CanActOn reports whether the principal may act on the account.
func (p *Principal) CanActOn(account string) bool { return slices.Contains(p.Accounts, account) }

type principalKey struct{}

// IsPrincipalKey reports whether key is the one FromContext asks a context
// for. A context of the caller's own that carries the principal itself
// (the server's per-request state, set once authentication succeeded)
// answers that key with it, sparing WithPrincipal's context and the
// request copy that carries it (two allocations a request, one of ~250
// bytes).
func IsPrincipalKey(key any) bool {
	_, ok := key.(principalKey)
	return ok
}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the auth middleware stored, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
