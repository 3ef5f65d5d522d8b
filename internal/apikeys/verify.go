package apikeys

import (
	"context"
	"errors"
	"net/netip"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// KeyResolver decides whether a key token works: auth.Authenticator's
// ResolveKey, the one place that decides it for requests, so that verify
// can never judge a key otherwise than a request made with it.
type KeyResolver interface {
	ResolveKey(ctx context.Context, token string) (*auth.ResolvedKey, *auth.Failure)
}

// Verdict codes, as the spec's VerifyCode spells them.
const (
	VerdictValid                   = string(api.VerifyValid)
	VerdictNotFound                = string(api.VerifyNotFound)
	VerdictRevoked                 = string(api.VerifyRevoked)
	VerdictDisabled                = string(api.VerifyDisabled)
	VerdictExpired                 = string(api.VerifyExpired)
	VerdictRateLimited             = string(api.VerifyRateLimited)
	VerdictInsufficientPermissions = string(api.VerifyInsufficientPermissions)
	VerdictNetworkNotAllowed       = string(api.VerifyNetworkNotAllowed)
	VerdictUsageExceeded           = string(api.VerifyUsageExceeded)
)

// VerifyInput is a verify request that passed schema validation.
type VerifyInput struct {
	// Token is the key to verify, as its holder presented it.
	Token string
	// Permissions the key must hold, all of them (nil: none asked).
	Permissions map[string][]string
	// ClientIP is the address of the client that presented the key to the
	// verifying service ("": not given). A key restricted to networks is
	// NETWORK_NOT_ALLOWED unless it is inside them.
	ClientIP string
}

// Verdict is what verify says about a key.
type Verdict struct {
	Code string // one of the Verdict* codes
	// Key is the key the token belongs to; nil for NOT_FOUND, which tells
	// nothing about any key.
	Key  *apikey.Key
	Mode apikey.Mode
	// Previous is set when the token is the key's replaced secret, inside
	// its rotation's grace period (a key that works only).
	Previous bool
	// Missing are the permissions asked for that the key lacks, sorted
	// (INSUFFICIENT_PERMISSIONS).
	Missing []string
	// RetryAfter is how long until the key's budget has room (RATE_LIMITED).
	RetryAfter time.Duration
	// CreditsRemaining is what a key with credits has left after this
	// verify (VALID, USAGE_EXCEEDED: SpendCredits); nil otherwise.
	CreditsRemaining *int64
}

// Valid reports whether the key works and holds what was asked for.
func (v *Verdict) Valid() bool { return v.Code == VerdictValid }

// Works reports whether the key authenticates now (whatever it may do): its
// budgets are then spent, as a request it made would spend them.
func (v *Verdict) Works() bool {
	return v.Code == VerdictValid || v.Code == VerdictInsufficientPermissions || v.Code == VerdictRateLimited
}

// OverBudget turns the verdict about a key that works into RATE_LIMITED:
// the server's rate limiter found the key (or its account) over budget. It
// comes before the permission verdict, as the budgets come before the
// permission check of a request the key made itself.
func (v *Verdict) OverBudget(wait time.Duration) {
	v.Code, v.Missing, v.RetryAfter = VerdictRateLimited, nil, wait
}

// SpendCredits spends cost of the credits of the key a VALID verdict is
// about, when it has credits (rule 24): in the store, whatever the verdict's
// copy of the key says is left (a cached copy's count is stale by design),
// by one conditional write that is exact across replicas. Refused, the
// verdict becomes USAGE_EXCEEDED and nothing is spent. It comes last, after
// every other check and the key's budgets, so that nothing else refuses a
// verify that spent. A store failure is the request's error (503 when the
// store is unavailable): never VALID without the spend.
func (s *Service) SpendCredits(ctx context.Context, v *Verdict, cost int64) error {
	if !v.Valid() || v.Key == nil || v.Key.Credits == nil {
		return nil
	}
	// A spend, once begun, finishes (within the store's timeout) even when
	// the client goes away: cancelled mid-flight, it could commit with its
	// answer turned into an error, credits spent for no VALID the server
	// recorded. Finished, the answer is VALID in the access log and metrics,
	// whether or not the client was still there to read it.
	remaining, ok, err := s.store.Repo(v.Mode).SpendCredits(context.WithoutCancel(ctx), v.Key.ID, cost, s.now())
	switch {
	case errors.Is(err, store.ErrNotFound):
		// The key is gone since it was resolved (its account's provisioning
		// was undone): no key.
		*v = Verdict{Code: VerdictNotFound}
		return nil
	case errors.Is(err, store.ErrNoCredits):
		return nil // credits are never removed: a key resolved with none
	case err != nil:
		return err
	}
	v.CreditsRemaining = &remaining
	if !ok {
		v.Code = VerdictUsageExceeded
	}
	return nil
}

// Verify says whether a key token works now for the caller p, a service
// checking the key its own caller presented, and whether the key holds the
// permissions asked for. A verdict is not an error: errors are about the
// request (a caller that may not verify, an unknown permission, a store
// failure). ResolveKey decides whether the key works; this decides only what
// the caller may learn: a key of an account it does not act on, or of the
// other mode, is NOT_FOUND exactly as a token that is no key at all. A key
// that works counts as used (last_used_*), as a request made with it would.
//
// The key's budgets are the server's business (rate limits live there): for
// a verdict that Works, it spends them and may call OverBudget.
func (s *Service) Verify(ctx context.Context, p *auth.Principal, in VerifyInput) (*Verdict, error) {
	if e := policy.CheckOperation(p, policy.Permissions[policy.VerifyKey]); e != nil {
		return nil, e
	}
	if unknown := s.catalog.Unknown(in.Permissions); len(unknown) > 0 {
		return nil, apierr.New(api.CodeUnknownPermission, "Unknown permission").With("unknown", unknown)
	}
	if in.ClientIP != "" {
		if _, err := netip.ParseAddr(in.ClientIP); err != nil {
			return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/client_ip", Reason: "not an IPv4 or IPv6 address"}})
		}
	}
	if s.keys == nil {
		return nil, apierr.Internal(errors.New("apikeys: Verify needs Options.Keys"))
	}
	r, f := s.keys.ResolveKey(ctx, in.Token)
	if f != nil {
		return s.refused(p, f)
	}
	if !policy.Verifies(p, r.Mode, r.Key) {
		return &Verdict{Code: VerdictNotFound}, nil
	}
	if !apikey.AllowsAddress(r.Key.AllowedNetworks, in.ClientIP) {
		// As a request from there would be refused (auth.ReasonNetwork): no
		// use recorded, none of the key's budgets spent (Works is false).
		return &Verdict{Code: VerdictNetworkNotAllowed, Key: r.Key, Mode: r.Mode, Previous: r.Previous}, nil
	}
	if s.usage != nil {
		s.usage.Record(r.Mode, r.Key.ID, s.now(), p.ClientIP)
	}
	v := &Verdict{Code: VerdictValid, Key: r.Key, Mode: r.Mode, Previous: r.Previous}
	// Nothing asked, nothing missing: the key's grants are not expanded.
	if len(in.Permissions) > 0 {
		if missing := s.grants(r.Key).Missing(perm.FromMap(in.Permissions)); len(missing) > 0 {
			v.Code, v.Missing = VerdictInsufficientPermissions, missing
		}
	}
	return v, nil
}

// permissionSets is a KeyResolver that keeps the permission sets of the keys
// it resolves (auth.Authenticator, for keys from its credential cache).
type permissionSets interface {
	PermissionSet(k *apikey.Key) perm.Set
}

// grants is perm.FromMap(k.Permissions) for a key s.keys resolved, from
// the resolver's sets when it keeps them: expanding a key's grants on every
// verify was ~5% of a cached verify's CPU.
func (s *Service) grants(k *apikey.Key) perm.Set {
	if ps, ok := s.keys.(permissionSets); ok {
		return ps.PermissionSet(k)
	}
	return perm.FromMap(k.Permissions)
}

// verdictOf is the verdict about a key found but refused by ResolveKey, by
// the failure's reason; "" for reasons that name no key (the token is no
// key, or no key has it).
var verdictOf = map[string]string{
	auth.ReasonDeleted:  VerdictRevoked,
	auth.ReasonReplaced: VerdictRevoked,
	auth.ReasonInactive: VerdictDisabled,
	auth.ReasonExpired:  VerdictExpired,
}

// refused turns ResolveKey's failure into a verdict. A failure that names a
// key (deleted, replaced, inactive, expired: Failure.Key) is answered as such
// only when the caller may see that key. Any other reason is NOT_FOUND; a
// store failure is ours (500).
func (s *Service) refused(p *auth.Principal, f *auth.Failure) (*Verdict, error) {
	if f.Reason == auth.ReasonStoreFailure {
		return nil, f.Err
	}
	code := verdictOf[f.Reason]
	if code == "" || f.Key == nil || !policy.Verifies(p, f.Mode, f.Key) {
		return &Verdict{Code: VerdictNotFound}, nil
	}
	return &Verdict{Code: code, Key: f.Key, Mode: f.Mode}, nil
}
