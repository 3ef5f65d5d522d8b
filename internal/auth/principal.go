// Package auth turns a bearer token into a Principal: who is calling, in
// which mode, on which accounts, with which permissions.
package auth

import (
	"context"
	"slices"

	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Principal is an authenticated caller.
type Principal struct {
	Kind keys.Kind // KindJWT, KindSecret or KindPublishable
	Mode store.Mode
	// Subject identifies the credential: the key id, or "jwt:" + sub.
	Subject string
	// KeyID is set for API keys.
	KeyID string
	// Accounts the caller may act on: its own for a key, the claim's for a JWT.
	Accounts    []string
	Permissions perm.Set
}

// CanActOn reports whether the principal may act on the account.
func (p *Principal) CanActOn(account string) bool { return slices.Contains(p.Accounts, account) }

type principalKey struct{}

// WithPrincipal stores p in ctx.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal the auth middleware stored, or nil.
func FromContext(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
