// Package policy holds every authorization rule of the service in one place:
// who may do what to which key. The rules are the credential-safety model
// written in openapi.yaml's description and the README:
//
//   - power never grows: a caller obtains or rotates a secret only for a key
//     whose permissions are a subset of its own;
//   - life never grows: a key that expires cannot create or rotate a key that
//     outlives it (JWTs are exempt: a person's grants outlive the session);
//   - networks never widen: a key restricted to networks (allowed_networks)
//     works only from addresses inside them (Current re-checks the request's
//     client address on the key as re-read), and obtains, rotates or changes
//     only keys restricted to subsets of its networks;
//   - rate limits never grow: a key with its own rate limit obtains, rotates
//     or changes only keys limited to no larger a rate (never unlimited ones);
//   - credits never grow (rule 24): a key with credits obtains, rotates or
//     changes only keys with no more credits left, never keys without, and
//     a refill only under its own (no larger amount, no shorter interval);
//   - a replaced secret in its grace period manages nothing, with one
//     exception: a secret that rotated its own key may fetch that
//     rotation's stored answer (OwnRotation, ReplayAuthorize);
//   - publishable keys manage nothing, and nobody acts on an account or mode
//     it does not hold;
//   - the decision is made inside the transaction that makes the change, on
//     the caller's own key as re-read there (Recheck), and before any answer
//     that depends on the target (only "not found" comes earlier);
//   - the managed secret key is the account's root credential: no credential
//     disables it, shortens its life or revokes it (MayTakeAway);
//   - a write answered to a caller that may not read keys shows no more than
//     it changed (ViewFor).
//
// Use cases call Recheck then Authorize inside their unit of work; the server's
// middleware calls CheckOperation, the same rules minus the target, before any
// input is read.
package policy

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/netip"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Action is a key-management operation.
type Action string

const (
	CreateKey     Action = "create"
	RegenerateKey Action = "regenerate"
	UpdateKey     Action = "update"
	DeleteKey     Action = "delete"
	ReadKeys      Action = "read"
	ReadAudit     Action = "read audit"
	// VerifyKey tells a service whether a key its own caller presented works.
	VerifyKey Action = "verify"
)

// Permissions is the permission each action needs. It must equal the
// operations' x-hsrcpay-permission in openapi.yaml (a test holds them together).
var Permissions = map[Action]string{
	CreateKey:     "account:api:key:create",
	RegenerateKey: "account:api:key:update",
	UpdateKey:     "account:api:key:update",
	DeleteKey:     "account:api:key:delete",
	ReadKeys:      "account:api:key:read",
	ReadAudit:     "account:audit:read",
	VerifyKey:     "account:api:key:verify",
}

// changes reports whether an action changes a key, so that the power and
// life rules apply: nobody rotates, edits, switches on or off, or revokes a
// key holding more than they do. Reading and verifying hand out no secret.
func changes(a Action) bool { return a != ReadKeys && a != ReadAudit && a != VerifyKey }

// Target is the key an action produces (create) or acts on (regenerate).
type Target struct {
	AccountID   string
	Permissions perm.Set
	// ExpiresAt is the key's expiry; nil means it never expires.
	ExpiresAt *time.Time
	// AllowedNetworks are the key's networks; nil means any address.
	AllowedNetworks []netip.Prefix
	// RateLimit is the key's own rate limit; nil means its mode's default.
	RateLimit *apikey.RateLimit
	// Credits are the key's credits as of the unit's clock (apikey.Credits.At);
	// nil means none.
	Credits *apikey.Credits
}

// CheckOperation is the coarse check made before any input is read: a
// publishable key, a replaced secret or a caller lacking the operation's
// declared permission is refused whatever the target. A replaced secret
// whose grace ended (made only for OwnRotation's exception) is refused with
// the 401 its failed authentication answers, word for word.
func CheckOperation(p *auth.Principal, need string) *apierr.Error {
	switch {
	case p.Replaced && p.GraceEnded:
		return apierr.InvalidCredentials()
	case p.Kind == keys.KindPublishable:
		return apierr.New(api.CodePublishableKeyForbidden, "Publishable keys cannot manage or read API keys; use a secret key")
	case p.Replaced:
		return apierr.New(api.CodeReplacedSecret,
			"This secret was replaced and works only until its grace period ends; it cannot manage or read keys. Use the current secret")
	case need == "" || !p.Permissions.Has(need):
		return apierr.New(api.CodePermissionDenied, "Missing permission "+need).With("required", need)
	}
	return nil
}

// Sees reports whether the caller may see a key at all (deleted keys
// included): it must act on the key's account. The mode needs no check here:
// each mode is its own repository, and a caller only reaches its own. A key
// it may not see is answered as not found, so that ids of other accounts
// reveal nothing.
func Sees(p *auth.Principal, k *apikey.Key) bool {
	return p.CanActOn(k.AccountID)
}

// Verifies reports whether the caller may learn anything about key k of
// mode (the mode its token names) through verify: k must be of the caller's
// mode and of an account it acts on. Verify answers any other key exactly as
// a token that is no key at all, so that a verifying service learns nothing
// about other accounts' or the other mode's keys. Unlike Sees it checks the
// mode: a token names its own repository, which need not be the caller's.
func Verifies(p *auth.Principal, mode apikey.Mode, k *apikey.Key) bool {
	return mode == p.Mode && Sees(p, k)
}

// Authorize decides whether p may perform a on t. It returns nil or the
// error to answer. p must come from Recheck inside the same transaction.
func Authorize(p *auth.Principal, a Action, t Target) *apierr.Error {
	need, ok := Permissions[a]
	if !ok {
		return apierr.Internal(errors.New("policy: unknown action " + string(a)))
	}
	if e := CheckOperation(p, need); e != nil {
		return e
	}
	if !p.CanActOn(t.AccountID) {
		if a == CreateKey || a == ReadKeys || a == ReadAudit {
			return apierr.New(api.CodeAccountForbidden, "This credential may not act on this account").With("account_id", t.AccountID)
		}
		return apierr.KeyNotFound()
	}
	if !changes(a) {
		return nil
	}
	if missing := p.Permissions.Missing(t.Permissions); len(missing) > 0 {
		if a == CreateKey {
			// The caller's own request: naming what it asked for reveals nothing.
			return apierr.New(api.CodePrivilegeEscalation, "The new key would hold permissions that the caller lacks").With("missing", missing)
		}
		e := apierr.New(api.CodePrivilegeEscalation, "The key holds permissions that the caller lacks")
		// The list is the target's permissions minus the caller's: a caller
		// that may not read keys learns none of a key's permissions from it.
		if p.Permissions.Has(Permissions[ReadKeys]) {
			e = e.With("missing", missing)
		}
		return e
	}
	if p.ExpiresAt != nil && outlives(t.ExpiresAt, *p.ExpiresAt) {
		limit := p.ExpiresAt.UTC().Format(time.RFC3339)
		if a == CreateKey {
			return apierr.New(api.CodeLifetimeExceedsCaller,
				"A key that expires can only create keys that expire no later than itself: set expires_at at most "+limit).
				With("max_expires_at", limit)
		}
		e := apierr.New(api.CodeLifetimeEscalation, "The key outlives the credential that would change it").
			With("credential_expires_at", limit)
		if t.ExpiresAt != nil {
			e = e.With("key_expires_at", t.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return e
	}
	if e := NetworksWithin(p, a, t.AllowedNetworks); e != nil {
		return e
	}
	if e := RateLimitWithin(p, a, t.RateLimit); e != nil {
		return e
	}
	return CreditsWithin(p, a, t.Credits)
}

// CreditsWithin is rule 24, credits never grow: a caller with credits (as
// re-read in the unit, at its clock: Current) obtains, rotates or changes
// only keys whose credits (as of the same clock) are within its own
// (apikey.CreditsWithin): no more left, a refill only under one of its own
// of no larger amount and no shorter interval, never a key without credits,
// which verifies without limit. JWTs and keys without credits bound
// nothing. Update asks it again for the credits it would set or add.
func CreditsWithin(p *auth.Principal, a Action, c *apikey.Credits) *apierr.Error {
	if apikey.CreditsWithin(c, p.Credits) {
		return nil
	}
	own := p.Credits.String()
	if a == CreateKey {
		return apierr.New(api.CodeCreditEscalation,
			"A key with credits can only create keys with credits within its own: at most "+own).
			With("caller_credits", own)
	}
	return apierr.New(api.CodeCreditEscalation, "The key would have more credits, or a larger refill, than the caller").
		With("caller_credits", own)
}

// RateLimitWithin is the rate-limit rule: a caller with its own rate limit
// obtains, rotates or changes only keys limited to no larger a rate
// (limit/window); a key without one gets its mode's default, which no
// per-key limit bounds, so it is refused too. JWTs have none. Update asks it
// again for the limit it would set.
func RateLimitWithin(p *auth.Principal, a Action, r *apikey.RateLimit) *apierr.Error {
	if apikey.RateWithin(r, p.RateLimit) {
		return nil
	}
	own := p.RateLimit.String()
	if a == CreateKey {
		return apierr.New(api.CodeRateLimitEscalation,
			"A key with its own rate limit can only create keys limited to no larger a rate: set rate_limit at most "+own).
			With("caller_rate_limit", own)
	}
	return apierr.New(api.CodeRateLimitEscalation, "The key would have a larger rate limit than the caller's own").
		With("caller_rate_limit", own)
}

// NetworksWithin is the network rule: a caller restricted to networks
// obtains, rotates or changes only keys restricted to subsets of them (a key
// without a restriction works from anywhere, so it is no subset). JWTs are
// never restricted. Update asks it again for the networks it would set.
func NetworksWithin(p *auth.Principal, a Action, networks []netip.Prefix) *apierr.Error {
	if apikey.NetworksWithin(networks, p.AllowedNetworks) {
		return nil
	}
	allowed := apikey.NetworkStrings(p.AllowedNetworks)
	if a == CreateKey {
		return apierr.New(api.CodeNetworkEscalation,
			"A key restricted to networks can only create keys restricted to subsets of them: set allowed_networks within the caller's").
			With("caller_allowed_networks", allowed)
	}
	return apierr.New(api.CodeNetworkEscalation, "The key would work from networks outside the caller's allowed_networks").
		With("caller_allowed_networks", allowed)
}

// OwnRotation reports whether p is a replaced secret (in its grace or with
// its grace ended) asking about a regenerate of its own key: the one case in
// which a replaced secret may be answered anything but its refusal, and then
// only with a stored answer (ReplayAuthorize). The server asks it to let
// such a request reach the stored answers, never the use case: a replaced
// secret can never start a regenerate.
//
// Why (issue 18): a secret key that rotates itself (the README's
// quickstart) is replaced the moment the rotation commits. A client that
// lost the answer (timeout, reset connection) can only retry with the
// secret it holds, now the replaced one; refused, it would lose the new
// secret for good (without grace nobody can fetch it any more). The stored
// answer is bound to that exact secret (the idempotency fingerprint holds
// its hash), and the secret can be recognised only until the key rotates
// again, so the exception hands the new secret to nobody but the holder of
// the secret it replaced, within the answer's 24 hours.
func OwnRotation(p *auth.Principal, a Action, targetID string) bool {
	return p.Replaced && p.KeyID != "" && p.Kind == keys.KindSecret && a == RegenerateKey && targetID == p.KeyID
}

// ReplayAuthorize decides whether p may receive the stored answer of an
// action a that issued a secret of key targetID (t): a replay is an
// execution, so it is Authorize, for p as it stands now (Current), with one
// exception. When OwnRotation(p, a, targetID) holds, p is judged as the
// secret it was when it made the request: the key's current secret, with
// the key's permissions and expiry as they are now, instead of being
// refused as a replaced secret. The caller (the replay use case) must have
// checked that the stored answer is p's own: its fingerprint binds p's
// exact secret, and a key's secret can only rotate that key while it is
// current, so the only completed regenerate of its own key that a replaced
// secret can have made is the rotation that replaced it.
func ReplayAuthorize(p *auth.Principal, a Action, targetID string, t Target) *apierr.Error {
	if OwnRotation(p, a, targetID) {
		was := *p
		was.Replaced, was.GraceEnded = false, false
		return Authorize(&was, a, t)
	}
	return Authorize(p, a, t)
}

// outlives reports whether an expiry (nil: never) is later than limit.
func outlives(exp *time.Time, limit time.Time) bool {
	return exp == nil || exp.After(limit)
}

// Recheck re-reads the caller's own key inside tx (locking it until commit;
// shared where the store can, store.KeySharer) and returns the principal as
// it stands now (see Current). JWTs are stateless and come back unchanged.
func Recheck(ctx context.Context, tx store.Tx, p *auth.Principal, now time.Time) (*auth.Principal, error) {
	if p.KeyID == "" {
		return p, nil
	}
	read := tx.Key
	if s, ok := tx.(store.KeySharer); ok {
		read = s.KeyShared // the caller's key is only read: see store.KeySharer
	}
	k, err := read(ctx, p.KeyID)
	if errors.Is(err, store.ErrNotFound) {
		return nil, apierr.InvalidCredentials()
	}
	if err != nil {
		return nil, err
	}
	return Current(p, k, now)
}

// Current is the principal p as its key k stands now: its current
// permissions and expiry, and whether the secret it presented is now only the
// replaced one. A secret that no longer authenticates (rotated away, key
// disabled, deleted or expired since the request was authenticated) is
// refused with 401. A previous secret whose grace ended stays a principal
// (Replaced, GraceEnded) only when it came as one (p.GraceEnded: the
// OwnRotation exception); CheckOperation refuses it with 401 anyway.
func Current(p *auth.Principal, k *apikey.Key, now time.Time) (*auth.Principal, error) {
	current := subtle.ConstantTimeCompare(k.SecretHash, p.SecretHash) == 1
	previous := !current && subtle.ConstantTimeCompare(k.PrevSecretHash, p.SecretHash) == 1
	inGrace := previous && k.InGrace(now)
	replaced := inGrace || (previous && p.GraceEnded)
	switch {
	case k.ID != p.KeyID || !(current || replaced) || k.Deleted || k.Status != apikey.StatusActive:
		return nil, apierr.InvalidCredentials()
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		return nil, apierr.ExpiredCredentials()
	case !apikey.AllowsAddress(k.AllowedNetworks, p.ClientIP):
		// Restricted since the request was authenticated: refused as
		// authentication refuses a request from outside (auth.ReasonNetwork).
		return nil, apierr.InvalidCredentials()
	}
	q := *p
	// Sets are never changed once built: the principal's, when the key still
	// grants exactly those.
	if !p.Permissions.Expands(k.Permissions) {
		q.Permissions = perm.FromMap(k.Permissions)
	}
	q.ExpiresAt = k.ExpiresAt
	q.AllowedNetworks = k.AllowedNetworks
	q.RateLimit = k.RateLimit
	q.Credits = k.Credits.At(now)
	q.Replaced, q.GraceEnded = replaced, replaced && !inGrace
	q.Accounts = []string{k.AccountID}
	return &q, nil
}

// Loss is what an action takes away from the holders of a key.
type Loss string

const (
	// Disable switches the key off (status INACTIVE): none of its secrets
	// authenticates until it is switched on again.
	Disable Loss = "disable"
	// Shorten moves the key's expiry (managed keys never expire: any expiry
	// is shorter).
	Shorten Loss = "shorten"
	// Rotate replaces the key's secret; the caller receives the new one.
	Rotate Loss = "rotate"
	// Revoke deletes the key.
	Revoke Loss = "revoke"
	// Restrict sets the key's allowed networks, its own rate limit or its
	// credits: it stops working from every address outside them, past the
	// limit, or once its credits are spent.
	Restrict Loss = "restrict"
)

// Root reports whether k is its account's root credential in its mode: the
// managed secret key, which holds every permission and which the platform
// made with the account.
func Root(k *apikey.Key) bool { return k.Managed && k.Type == apikey.TypeSecret }

// MayTakeAway decides whether an action may take l away from key k, once
// Authorize allowed the caller to act on k. The answer depends on the key,
// not on the caller: the rule is that an account always keeps one working
// root credential, so no credential (a peer holding the same permissions,
// a JWT, the root itself) may switch it off, shorten its life, restrict it
// to networks or revoke it.
// Rotating it stays allowed: the new secret goes to the caller, so a
// working root credential still exists. Managed keys are rotated, never
// deleted, and their expiry is fixed; a managed publishable key may be
// switched off by a caller with power over it (its owner's choice: it
// manages no keys).
func MayTakeAway(k *apikey.Key, l Loss) *apierr.Error {
	switch {
	case !k.Managed || l == Rotate:
		return nil
	case l == Revoke:
		return apierr.New(api.CodeManagedKeyNotDeletable, "Managed keys are rotated with regenerate, never deleted")
	case l == Shorten:
		return apierr.New(api.CodeManagedKeyFixed, "A managed key's name and expiry cannot change; update its metadata or status")
	case l == Disable && Root(k):
		return apierr.New(api.CodeManagedKeyFixed,
			"The managed secret key is the account's root credential: it cannot be disabled; rotate it with regenerate")
	case l == Restrict && Root(k):
		// Restricting it to networks switches it off everywhere else.
		return apierr.New(api.CodeManagedKeyFixed,
			"The managed secret key is the account's root credential: it cannot be restricted to networks or given a rate limit or credits")
	}
	return nil
}

// ViewFor is key k as the answer to a write (update, delete) by p may show
// it. A caller holding the read permission sees the key as stored. One
// without it (a key made to switch keys off, or to revoke them) learns no
// more than what it changed: the metadata only when its request set them
// (wroteMetadata; then they are what it set), no last use; the rest (id,
// name, type, hint, permissions, which Authorize held to the caller's own,
// status, expiry, flags, timestamps) is what any such write must confirm.
// k is not modified.
func ViewFor(p *auth.Principal, k *apikey.Key, wroteMetadata bool) *apikey.Key {
	if p.Permissions.Has(Permissions[ReadKeys]) {
		return k
	}
	v := *k
	if !wroteMetadata {
		v.Metadata = map[string]string{}
	}
	v.LastUsedAt, v.LastUsedIP = nil, nil
	return &v
}
