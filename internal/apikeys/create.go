package apikeys

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// CreateInput is a create request that passed schema validation.
type CreateInput struct {
	Name        string
	Permissions map[string][]string
	ExpiresAt   *time.Time
	Metadata    map[string]string
	// AllowedNetworks as sent (addresses and CIDR prefixes); nil: any address.
	AllowedNetworks []string
	// RateLimit as sent; nil: the mode's default budget.
	RateLimit *RateLimitInput
	// Credits as sent; nil: none (verifies spend nothing).
	Credits *CreditsInput
}

// CreditsInput is credits as sent: what is left and an optional refill
// (Day 0: absent).
type CreditsInput struct {
	Remaining int64
	Refill    *apikey.CreditRefill
}

// RateLimitInput is a rate_limit as sent: limit requests per window ("1m").
type RateLimitInput struct {
	Limit  int
	Window string
}

const maxMetadataKeyLen = 40

// MaxExpiry is the latest expiry a key may have: every store and the JSON
// encoder can hold it (RFC 3339 has four-digit years).
var MaxExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

// Create issues a custom secret key on accountID for the caller p. The input
// is checked first (nothing it refuses could be stored or rendered); then one
// unit of work re-reads the caller's key, asks the policy, enforces the
// account's cap and inserts, so that nothing is written unless every check
// passed on the state that commits.
func (s *Service) Create(ctx context.Context, p *auth.Principal, accountID string, in CreateInput, opts ...UnitOption) (*Issued, error) {
	uo := applyUnitOptions(opts)
	if !p.CanActOn(accountID) {
		return nil, apierr.New(api.CodeAccountForbidden, "This credential may not act on this account").With("account_id", accountID)
	}
	name, nameErr := CleanName(in.Name)
	if nameErr != nil {
		return nil, nameErr
	}
	if e := checkMetadata(in.Metadata); e != nil {
		return nil, e
	}
	if unknown := s.catalog.Unknown(in.Permissions); len(unknown) > 0 {
		return nil, apierr.New(api.CodeUnknownPermission, "Unknown permission").With("unknown", unknown)
	}
	networks, netErr := parseNetworks(in.AllowedNetworks)
	if netErr != nil {
		return nil, netErr
	}
	limit, limitErr := parseRateLimit(in.RateLimit)
	if limitErr != nil {
		return nil, limitErr
	}
	now := s.now().UTC()
	credits, creditsErr := parseCredits(in.Credits, now)
	if creditsErr != nil {
		return nil, creditsErr
	}
	target := policy.Target{AccountID: accountID, Permissions: perm.FromMap(in.Permissions), ExpiresAt: utcPtr(in.ExpiresAt),
		AllowedNetworks: networks, RateLimit: limit, Credits: credits}
	if exp := target.ExpiresAt; exp != nil && (!exp.After(now) || exp.After(MaxExpiry)) {
		return nil, apierr.New(api.CodeInvalidExpiry, "expires_at must be in the future and no later than 9999-12-31T23:59:59Z")
	}
	k := &apikey.Key{
		AccountID:   accountID,
		Name:        name,
		Type:        apikey.TypeSecret,
		Permissions: normalize(in.Permissions),
		Metadata:    in.Metadata,
		Status:      apikey.StatusActive,
		ExpiresAt:   target.ExpiresAt,
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   actor(p),

		AllowedNetworks: networks,
		RateLimit:       limit,
		Credits:         credits,
	}
	var issued *Issued
	err := s.store.Repo(p.Mode).InTx(ctx, func(tx store.Tx) error {
		caller, err := policy.Recheck(ctx, tx, p, now)
		if err != nil {
			return err
		}
		if e := policy.Authorize(caller, policy.CreateKey, target); e != nil {
			return e
		}
		if err := tx.LockAccount(ctx, accountID); err != nil {
			return err
		}
		reached, err := tx.KeyCapReached(ctx, accountID, now, s.maxActiveKeys)
		if err != nil {
			return err
		}
		if reached {
			return apierr.New(api.CodeKeyLimitReached,
				fmt.Sprintf("The account already holds %d active keys, the most allowed; delete or let one expire first", s.maxActiveKeys)).
				With("limit", s.maxActiveKeys)
		}
		if err := tx.ReleaseExpiredName(ctx, accountID, name, now); err != nil {
			return err
		}
		if issued, err = insert(ctx, tx, k, p.Mode); err != nil {
			return err
		}
		if err := recordBy(ctx, tx, p, audit.Create, k, createdFields(k), now); err != nil {
			return err
		}
		return uo.recordIssued(ctx, tx, issued)
	})
	if errors.Is(err, store.ErrNoAccount) {
		return nil, apierr.New(api.CodeAccountNotFound, "Account not found").With("account_id", accountID)
	}
	if err != nil {
		return nil, serviceError(err, name)
	}
	return issued, nil
}

// parseNetworks reads allowed_networks (apikey.ParseNetworks); what it
// refuses is the request's field, a 400.
func parseNetworks(in []string) ([]netip.Prefix, *apierr.Error) {
	networks, err := apikey.ParseNetworks(in)
	if err != nil {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/allowed_networks", Reason: err.Error()}})
	}
	return networks, nil
}

// parseRateLimit reads rate_limit (apikey.ParseRateLimit); nil for none.
// What the schema's pattern lets through and the bounds refuse (a window
// over a day) is the request's field, a 400.
func parseRateLimit(in *RateLimitInput) (*apikey.RateLimit, *apierr.Error) {
	if in == nil {
		return nil, nil
	}
	r, err := apikey.ParseRateLimit(in.Limit, in.Window)
	if err != nil {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/rate_limit", Reason: err.Error()}})
	}
	return r, nil
}

// parseCredits reads credits as set at now (apikey.ParseCredits); nil for
// none. A day on a daily refill is 42208; what else the bounds refuse (the
// schema's own bounds, normally) is the request's field, a 400.
func parseCredits(in *CreditsInput, now time.Time) (*apikey.Credits, *apierr.Error) {
	if in == nil {
		return nil, nil
	}
	c, err := apikey.ParseCredits(in.Remaining, in.Refill, now)
	if errors.Is(err, apikey.ErrDailyRefillDay) {
		return nil, apierr.New(api.CodeCreditsInvalid, "A daily refill has no day: send refill.day only with interval monthly")
	}
	if err != nil {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/credits", Reason: err.Error()}})
	}
	return c, nil
}

// creditsValue is credits as audit events hold them: what is left (as of
// the change) and the refill, if any.
func creditsValue(c *apikey.Credits) map[string]any {
	m := map[string]any{"remaining": c.Remaining}
	if r := c.Refill; r != nil {
		refill := map[string]any{"amount": r.Amount, "interval": r.Interval}
		if r.Interval == apikey.RefillMonthly {
			refill["day"] = r.Day
		}
		m["refill"] = refill
	}
	return m
}

// rateLimitValue is a rate limit as audit events hold it.
func rateLimitValue(r *apikey.RateLimit) map[string]any {
	return map[string]any{"limit": r.Limit, "window": r.WindowString()}
}

func checkMetadata(m map[string]string) *apierr.Error {
	for k, v := range m {
		if len(k) == 0 || len([]rune(k)) > maxMetadataKeyLen {
			return apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/metadata",
				Reason: fmt.Sprintf("metadata keys must be 1 to %d characters", maxMetadataKeyLen)}})
		}
		// Not every store can hold U+0000 (PostgreSQL's jsonb cannot).
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			return apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/metadata",
				Reason: "metadata keys and values must not contain NUL characters"}})
		}
	}
	return nil
}

// insert mints id and secret and stores k, retrying on the (astronomically
// unlikely) collision of either. A failed insert inside PostgreSQL aborts the
// transaction, so a retry there needs a savepoint; the odds (2^-143 for ids)
// make the retry moot, and the collision then fails the request cleanly.
func insert(ctx context.Context, tx store.Tx, k *apikey.Key, mode apikey.Mode) (*Issued, error) {
	kind := secretKind(k.Type)
	id, err := keys.NewID()
	if err != nil {
		return nil, err
	}
	secret, err := keys.New(kind, mode == apikey.Sandbox)
	if err != nil {
		return nil, err
	}
	k.ID, k.SecretHash, k.KeyHint = id, keys.Hash(secret), keys.Hint(secret)
	if err := tx.InsertKey(ctx, k); err != nil {
		return nil, err
	}
	return &Issued{Key: k, Mode: mode, Secret: secret}, nil
}
