package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/credcache"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Failure reasons, for logs and metrics; never the token itself.
const (
	ReasonMissing    = "missing"
	ReasonMalformed  = "malformed"
	ReasonChecksum   = "checksum"
	ReasonUnknownKey = "unknown_key"
	ReasonDeleted    = "deleted"  // a deleted (revoked) key
	ReasonReplaced   = "replaced" // a previous secret past its grace period
	ReasonInactive   = "inactive"
	ReasonExpired    = "expired"
	// ReasonNetwork: a key restricted to networks, presented from an
	// address outside them. Answered as an unknown key (40101): whoever
	// holds a key elsewhere learns nothing of it (docs/security.md).
	ReasonNetwork      = "network_not_allowed"
	ReasonJWTInvalid   = "jwt_invalid"
	ReasonJWTDisabled  = "jwt_not_configured"
	ReasonStoreFailure = "store_error"
)

// Failure is an authentication failure with its reason.
type Failure struct {
	Reason string
	Err    *apierr.Error
	// Key and Mode are the key the token belongs to, when it was found but
	// refused (deleted, replaced, inactive, expired); nil otherwise. Never
	// shown to the client that presented the token.
	Key  *apikey.Key
	Mode apikey.Mode
	// Detail says more for the log (e.g. why a JWT was refused): a fixed
	// phrase, never the token or a value taken from it.
	Detail string
	// resolved is the key token a ReasonReplaced failure matched (Replaced
	// is made of it).
	resolved *ResolvedKey
	// Replaced is, for a key's previous secret whose grace ended
	// (ReasonReplaced), the principal that secret would be, marked Replaced
	// and GraceEnded; nil for any other failure. It authenticates nothing:
	// the policy refuses it everywhere with this failure's 401
	// (policy.CheckOperation). It exists for one exception only (issue 18):
	// the secret that rotated its own key may fetch that rotation's stored
	// answer (policy.OwnRotation, apikeys.Service.AuthorizeReplay), so that a
	// client that lost the answer does not lose the new secret. No use of
	// the key is recorded for it.
	Replaced *Principal
}

func (f *Failure) Error() string { return "auth: " + f.Reason }
func (f *Failure) Unwrap() error { return f.Err }

func fail(reason string, e *apierr.Error) *Failure { return &Failure{Reason: reason, Err: e} }

// Authenticator resolves bearer tokens.
type Authenticator struct {
	Store store.Store
	JWT   *JWTVerifier // nil: JWTs are rejected
	Usage *UsageTracker
	Now   func() time.Time
	// Cache holds recent lookups (nil: every lookup reads the store). It
	// holds what the store said, never a verdict: ResolveKey judges every
	// snapshot against Now, so a cached key expires, and a previous secret
	// ends its grace, exactly when an uncached one does.
	Cache *credcache.Cache

	sets permSets // the keys' permission sets, by their maps (see permSets)
}

// Authenticate checks the Authorization header's value. Store failures come
// back as internal errors (500), never as 401.
func (a *Authenticator) Authenticate(ctx context.Context, header, clientIP string) (*Principal, error) {
	token, ok := bearerToken(header)
	if !ok {
		if strings.TrimSpace(header) == "" {
			return nil, fail(ReasonMissing, apierr.MissingCredentials())
		}
		return nil, fail(ReasonMalformed, apierr.InvalidCredentials())
	}
	switch keys.Classify(token) {
	case keys.KindJWT:
		return a.jwt(token)
	case keys.KindSecret, keys.KindPublishable:
		return a.key(ctx, token, clientIP)
	}
	return nil, fail(ReasonMalformed, apierr.InvalidCredentials())
}

// bearerToken extracts the token from "Bearer <token>" (scheme case-insensitive).
func bearerToken(h string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > keys.MaxTokenLen || strings.ContainsAny(token, " \t\r\n") {
		return "", false
	}
	return token, true
}

// ResolvedKey is a key token matched to its stored key.
type ResolvedKey struct {
	Key  *apikey.Key
	Mode apikey.Mode
	Kind keys.Kind // KindSecret or KindPublishable
	// Previous is set when the token is the key's previous secret (inside
	// its rotation's grace period, unless it came with a ReasonReplaced
	// failure).
	Previous bool
	// Hash is the token's hash (never logged), in sum.
	Hash []byte
	sum  [sha256.Size]byte
}

// ResolveKey finds the key a key token (sk_/pk_) belongs to and checks that
// it authenticates now: the one place that decides whether a key works, for
// requests (Authenticate) and for the verify operation. A token that is not
// a key, a bad checksum, an unknown or deleted key, a wrong type or a
// previous secret past its grace period fail with the matching reason.
//
// A key keeps its previous secret's hash until it rotates again, whether or
// not that rotation gave a grace period (issue 18): so a replaced secret
// whose grace ended is still recognised (ReasonReplaced, which verify
// answers REVOKED), and only a secret rotated away twice is unknown. The
// refusals come in the spec's verdict order: deleted, replaced (grace
// ended), switched off, expired; a deleted key's previous secret is
// "deleted", whatever its grace.
func (a *Authenticator) ResolveKey(ctx context.Context, token string) (*ResolvedKey, *Failure) {
	parsed, err := keys.Parse(token)
	if errors.Is(err, keys.ErrChecksum) {
		return nil, fail(ReasonChecksum, apierr.InvalidCredentials())
	}
	if err != nil {
		return nil, fail(ReasonMalformed, apierr.InvalidCredentials())
	}
	mode := apikey.Live
	if parsed.Sandbox {
		mode = apikey.Sandbox
	}
	// The hash lives in the ResolvedKey made here (the store's lookup keeps
	// it on the heap anyway): one allocation for both.
	resolved := &ResolvedKey{Mode: mode, Kind: parsed.Kind, sum: keys.Sum(token)}
	hash := resolved.sum[:]
	resolved.Hash = hash
	k, err := a.lookup(ctx, mode, hash)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fail(ReasonUnknownKey, apierr.InvalidCredentials())
	}
	if err != nil {
		return nil, fail(ReasonStoreFailure, apierr.Internal(err))
	}
	wantType := apikey.TypeSecret
	if parsed.Kind == keys.KindPublishable {
		wantType = apikey.TypePublishable
	}
	// The index found it by hash; compare in constant time all the same.
	// A match on the previous secret counts only inside its grace period.
	now := a.Now()
	current := subtle.ConstantTimeCompare(k.SecretHash, hash) == 1
	previous := !current && subtle.ConstantTimeCompare(k.PrevSecretHash, hash) == 1
	if !(current || previous) || k.Type != wantType {
		return nil, fail(ReasonUnknownKey, apierr.InvalidCredentials())
	}
	// From here the token is the key's: a refusal names it (Failure.Key),
	// so that verify can tell its holder's service why without a re-read.
	var refused *Failure
	switch {
	case k.Deleted:
		refused = fail(ReasonDeleted, apierr.InvalidCredentials())
	case previous && !k.InGrace(now):
		refused = fail(ReasonReplaced, apierr.InvalidCredentials())
	case k.Status != apikey.StatusActive:
		refused = fail(ReasonInactive, apierr.InvalidCredentials())
	case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
		refused = fail(ReasonExpired, apierr.ExpiredCredentials())
	}
	resolved.Key, resolved.Previous = k, previous
	if refused != nil {
		refused.Key, refused.Mode = k, mode
		if refused.Reason == ReasonReplaced {
			refused.resolved = resolved
		}
		return nil, refused
	}
	return resolved, nil
}

// lookup reads the key holding hash as its current or previous secret,
// from the cache when it has it. The ticket taken before the store read
// keeps a read that an invalidation overtook out of the cache. Store errors
// are never cached.
func (a *Authenticator) lookup(ctx context.Context, mode apikey.Mode, hash []byte) (*apikey.Key, error) {
	if a.Cache == nil {
		return a.Store.Repo(mode).KeyBySecretHash(ctx, hash)
	}
	if k, hit := a.Cache.Get(mode, hash); hit {
		if k == nil {
			return nil, store.ErrNotFound
		}
		return k, nil
	}
	t := a.Cache.Begin()
	k, err := a.Store.Repo(mode).KeyBySecretHash(ctx, hash)
	switch {
	case err == nil:
		// The store's read is ours alone: cached as it is, not copied,
		// and what is used from here on is the cache's snapshot.
		k = a.Cache.Adopt(t, mode, hash, k)
	case errors.Is(err, store.ErrNotFound):
		a.Cache.PutMissing(t, mode, hash)
	}
	return k, err
}

func (a *Authenticator) key(ctx context.Context, token, clientIP string) (*Principal, error) {
	r, f := a.ResolveKey(ctx, token)
	if f != nil {
		if f.resolved != nil {
			f.Replaced = a.principal(f.resolved)
			f.Replaced.GraceEnded = true
		}
		return nil, f
	}
	if !apikey.AllowsAddress(r.Key.AllowedNetworks, clientIP) {
		// Not a use of the key: nothing recorded, and the client address
		// (not the key's owner) pays, as for any failed authentication.
		return nil, fail(ReasonNetwork, apierr.InvalidCredentials())
	}
	if a.Usage != nil {
		a.Usage.Record(r.Mode, r.Key.ID, a.Now(), clientIP)
	}
	return a.principal(r), nil
}

// principal is the caller a key token r stands for.
func (a *Authenticator) principal(r *ResolvedKey) *Principal {
	k := r.Key
	p := &Principal{
		Kind:        r.Kind,
		Mode:        r.Mode,
		Subject:     k.ID,
		KeyID:       k.ID,
		Permissions: a.permissions(k),
		ExpiresAt:   k.ExpiresAt,
		Replaced:    r.Previous,
		// The key's slice: never changed once read (snapshots are copies).
		AllowedNetworks: k.AllowedNetworks,
		RateLimit:       k.RateLimit,
		SecretHash:      r.Hash,
	}
	// A key acts on its own account only: the list lives in the principal
	// (one allocation, not two).
	p.keyAccount[0] = k.AccountID
	p.Accounts = p.keyAccount[:]
	return p
}

// PermissionSet is perm.FromMap(k.Permissions) for a key ResolveKey
// returned (whose map nobody changes), built once per cached key as for the
// principals (verify's check of the permissions asked of a key). The set is
// shared: read only.
func (a *Authenticator) PermissionSet(k *apikey.Key) perm.Set { return a.permissions(k) }

// permissions expands k's grants; a key the credential cache handed out
// shares its map with every other hit, so its set is built once (permSets).
func (a *Authenticator) permissions(k *apikey.Key) perm.Set {
	if a.Cache == nil {
		return perm.FromMap(k.Permissions)
	}
	return a.sets.of(k.Permissions)
}

func (a *Authenticator) jwt(token string) (*Principal, error) {
	if a.JWT == nil {
		return nil, fail(ReasonJWTDisabled, apierr.InvalidCredentials())
	}
	c, err := a.JWT.Verify(token)
	if errors.Is(err, ErrTokenExpired) {
		return nil, fail(ReasonExpired, apierr.ExpiredCredentials())
	}
	if err != nil {
		f := fail(ReasonJWTInvalid, apierr.InvalidCredentials())
		f.Detail = jwtRefusal(err)
		return nil, f
	}
	mode := apikey.Live
	switch c.Mode {
	case "", "live":
	case "test":
		mode = apikey.Sandbox
	default:
		f := fail(ReasonJWTInvalid, apierr.New(api.CodeInvalidCredentials, "Invalid token: mode must be live or test"))
		f.Detail = "mode must be live or test"
		return nil, f
	}
	return &Principal{
		Kind:        keys.KindJWT,
		Mode:        mode,
		Subject:     "jwt:" + c.Subject,
		Issuer:      c.Issuer,
		TokenID:     c.ID,
		Accounts:    c.Accounts,
		Permissions: perm.FromList(c.Permissions),
	}, nil
}
