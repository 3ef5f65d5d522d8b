package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Failure reasons, for logs and metrics; never the token itself.
const (
	ReasonMissing      = "missing"
	ReasonMalformed    = "malformed"
	ReasonChecksum     = "checksum"
	ReasonUnknownKey   = "unknown_key"
	ReasonInactive     = "inactive"
	ReasonExpired      = "expired"
	ReasonJWTInvalid   = "jwt_invalid"
	ReasonJWTDisabled  = "jwt_not_configured"
	ReasonStoreFailure = "store_error"
)

// Failure is an authentication failure with its reason.
type Failure struct {
	Reason string
	Err    *apierr.Error
	// Detail says more for the log (e.g. why a JWT was refused): a fixed
	// phrase, never the token or a value taken from it.
	Detail string
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

func (a *Authenticator) key(ctx context.Context, token, clientIP string) (*Principal, error) {
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
	hash := keys.Hash(token)
	k, err := a.Store.Repo(mode).KeyBySecretHash(ctx, hash)
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
	current := subtle.ConstantTimeCompare(k.SecretHash, hash) == 1
	previous := !current && subtle.ConstantTimeCompare(k.PrevSecretHash, hash) == 1 &&
		k.PrevSecretExpiresAt != nil && a.Now().Before(*k.PrevSecretExpiresAt)
	if !(current || previous) || k.Type != wantType || k.Deleted {
		return nil, fail(ReasonUnknownKey, apierr.InvalidCredentials())
	}
	if k.Status != apikey.StatusActive {
		return nil, fail(ReasonInactive, apierr.InvalidCredentials())
	}
	if k.ExpiresAt != nil && !a.Now().Before(*k.ExpiresAt) {
		return nil, fail(ReasonExpired, apierr.ExpiredCredentials())
	}
	if a.Usage != nil {
		a.Usage.Record(mode, k.ID, a.Now(), clientIP)
	}
	return &Principal{
		Kind:        parsed.Kind,
		Mode:        mode,
		Subject:     k.ID,
		KeyID:       k.ID,
		Accounts:    []string{k.AccountID},
		Permissions: perm.FromMap(k.Permissions),
		ExpiresAt:   k.ExpiresAt,
		Replaced:    previous,
		SecretHash:  hash,
	}, nil
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
		Accounts:    c.Accounts,
		Permissions: perm.FromList(c.Permissions),
	}, nil
}
