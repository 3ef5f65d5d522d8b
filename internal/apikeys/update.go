package apikeys

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// UpdateInput is an update request that passed schema validation: nil
// fields keep their values.
type UpdateInput struct {
	Name      *string
	Metadata  map[string]string // replaces the whole map when non-nil
	Status    *string           // ACTIVE or INACTIVE
	ExpiresAt *time.Time
	// AllowedNetworks replaces the key's networks when non-nil; an empty
	// list lifts the restriction.
	AllowedNetworks *[]string
	// RateLimit replaces the key's own rate limit when non-nil.
	RateLimit *RateLimitInput
	// Credits replace the key's credits (what is left and the refill) when
	// non-nil; CreditsAdd adds to what a key with credits has left. Not both.
	Credits    *CreditsInput
	CreditsAdd *int64
}

// Update changes a key's name, metadata, status or expiry (only earlier).
// The key must hold nothing the caller lacks and, for a caller that expires,
// must not outlive it: switching a powerful key back on is handing its power
// out again. The managed secret key is never switched off (policy.MayTakeAway).
// The change and its audit event commit together. A caller that may not read
// keys gets the key back showing only what it changed (policy.ViewFor).
func (s *Service) Update(ctx context.Context, p *auth.Principal, id string, in UpdateInput) (*apikey.Key, error) {
	var name string
	if in.Name != nil {
		n, e := CleanName(*in.Name)
		if e != nil {
			return nil, e
		}
		name = n
	}
	if in.Metadata != nil {
		if e := checkMetadata(in.Metadata); e != nil {
			return nil, e
		}
	}
	var networks []netip.Prefix
	if in.AllowedNetworks != nil {
		n, e := parseNetworks(*in.AllowedNetworks)
		if e != nil {
			return nil, e
		}
		networks = n
	}
	limit, limitErr := parseRateLimit(in.RateLimit)
	if limitErr != nil {
		return nil, limitErr
	}
	if in.Credits != nil && in.CreditsAdd != nil {
		return nil, apierr.New(api.CodeCreditsInvalid, "Send credits or credits_add, not both")
	}
	if a := in.CreditsAdd; a != nil && (*a < 1 || *a > apikey.MaxCredits) {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/credits_add",
			Reason: fmt.Sprintf("must be 1 to %d", int64(apikey.MaxCredits))}})
	}
	var updated *apikey.Key
	var caller *auth.Principal // as re-read in the unit: what it may see of the answer
	wrote := false
	err := s.store.Repo(p.Mode).InTx(ctx, func(tx store.Tx) error {
		target, c, now, err := s.lockTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		caller = c
		// The credits it would set, as of the unit's clock: rule 24 compares
		// them with the caller's at the same instant.
		credits, e := parseCredits(in.Credits, now)
		if e != nil {
			return e
		}
		// Authorization first: every answer below tells something about the
		// key (deleted, managed, its expiry, a name it holds), which only a
		// caller with power over it may learn.
		if e := policy.Authorize(caller, policy.UpdateKey, targetOf(target, now)); e != nil {
			return e
		}
		// The networks it would set obey the same rule as the key's own: a
		// caller cannot lift or widen a restriction beyond its own networks.
		if in.AllowedNetworks != nil {
			if e := policy.NetworksWithin(caller, policy.UpdateKey, networks); e != nil {
				return e
			}
		}
		if limit != nil {
			if e := policy.RateLimitWithin(caller, policy.UpdateKey, limit); e != nil {
				return e
			}
		}
		if in.CreditsAdd != nil {
			// What is left as of now plus the addition, under the key's lock:
			// no spend runs between the read and the write (the store's
			// spend waits for the lock, or runs in the same writer).
			if target.Credits == nil {
				return apierr.New(api.CodeCreditsInvalid, "credits_add is only for a key with credits: set credits first")
			}
			c := target.Credits.At(now)
			if c.Remaining > apikey.MaxCredits-*in.CreditsAdd {
				return creditsTooMany("/credits_add")
			}
			c.Remaining += *in.CreditsAdd
			credits = c
		}
		if credits != nil {
			if e := policy.CreditsWithin(caller, policy.UpdateKey, credits); e != nil {
				return e
			}
		}
		if target.Deleted {
			return apierr.New(api.CodeKeyDeleted, "The API key is deleted and cannot change").With("id", id)
		}
		if target.Managed && in.Name != nil {
			return apierr.New(api.CodeManagedKeyFixed, "A managed key's name and expiry cannot change; update its metadata or status")
		}
		if in.ExpiresAt != nil {
			if e := policy.MayTakeAway(target, policy.Shorten); e != nil {
				return e
			}
		}
		if in.Status != nil && *in.Status == apikey.StatusInactive {
			if e := policy.MayTakeAway(target, policy.Disable); e != nil {
				return e
			}
		}
		if len(networks) > 0 || limit != nil || credits != nil {
			if e := policy.MayTakeAway(target, policy.Restrict); e != nil {
				return e
			}
		}
		if exp := in.ExpiresAt; exp != nil {
			if !exp.After(now) || exp.After(MaxExpiry) {
				return apierr.New(api.CodeInvalidExpiry, "expires_at must be in the future and no later than 9999-12-31T23:59:59Z")
			}
			if target.ExpiresAt != nil && exp.After(*target.ExpiresAt) {
				return apierr.New(api.CodeExpiryExtended, "expires_at can only move earlier").
					With("expires_at", target.ExpiresAt.UTC().Format(time.RFC3339Nano))
			}
		}
		if err := tx.LockAccount(ctx, target.AccountID); err != nil {
			return err
		}
		changes, action := map[string]any{}, audit.Update
		if in.Name != nil && name != target.Name {
			if err := tx.ReleaseExpiredName(ctx, target.AccountID, name, now); err != nil {
				return err
			}
			target.Name, changes["name"] = name, name
		}
		if in.Metadata != nil && !maps.Equal(in.Metadata, target.Metadata) {
			target.Metadata, changes["metadata"] = in.Metadata, in.Metadata
		}
		// Compared at the microsecond, the precision every store keeps, so
		// that sending the current expiry again changes (and records) nothing.
		// The previous secret's end is left alone: only managed keys hold a
		// previous secret (regenerate and the leak response rotate only
		// those), and their expiry never changes (MayTakeAway, Shorten); and
		// a key's expiry ends every secret of it at each use anyway
		// (auth.Authenticator, policy.Current).
		if exp := in.ExpiresAt; exp != nil && (target.ExpiresAt == nil ||
			!exp.Truncate(time.Microsecond).Equal(target.ExpiresAt.Truncate(time.Microsecond))) {
			exp := exp.UTC()
			target.ExpiresAt, changes["expires_at"] = &exp, timeValue(&exp)
		}
		if in.AllowedNetworks != nil && !slices.Equal(networks, target.AllowedNetworks) {
			target.AllowedNetworks = networks
			changes["allowed_networks"] = apikey.NetworkStrings(networks)
			if networks == nil {
				changes["allowed_networks"] = []string{} // lifted: any address
			}
		}
		if limit != nil && (target.RateLimit == nil || *limit != *target.RateLimit) {
			target.RateLimit, changes["rate_limit"] = limit, rateLimitValue(limit)
		}
		if credits != nil && !sameCredits(credits, target.Credits.At(now)) {
			target.Credits, changes["credits"] = credits, creditsValue(credits)
			if in.CreditsAdd != nil {
				changes["credits_added"] = *in.CreditsAdd
			}
		}
		if in.Status != nil && *in.Status != target.Status {
			target.Status, changes["status"] = *in.Status, *in.Status
			action = map[string]string{apikey.StatusInactive: audit.Disable, apikey.StatusActive: audit.Enable}[*in.Status]
		}
		updated = target
		if len(changes) == 0 {
			return nil // nothing changed: nothing written, nothing recorded
		}
		target.UpdatedAt = now
		if err := tx.UpdateKey(ctx, target); err != nil {
			return err
		}
		wrote = true
		return recordBy(ctx, tx, p, action, target, changes, now)
	})
	if err != nil {
		return nil, serviceError(err, name)
	}
	if wrote { // a name, metadata or networks change too: the cached snapshot would show the old one
		s.changed(p.Mode, updated.ID)
	}
	s.overlayUsage(p.Mode, updated)
	return policy.ViewFor(caller, updated, in.Metadata != nil), nil
}

// lockTarget locks the target and the caller's own key (id order), reads the
// clock once they are held, re-checks the caller and hides keys it may not
// see: the common start of every unit that changes an existing key.
func (s *Service) lockTarget(ctx context.Context, tx store.Tx, p *auth.Principal, id string) (target *apikey.Key, caller *auth.Principal, now time.Time, err error) {
	target, callerKey, err := lockKeys(ctx, tx, id, p.KeyID)
	if err != nil {
		return nil, nil, now, err
	}
	now = s.now().UTC()
	caller = p
	if callerKey != nil {
		if caller, err = policy.Current(p, callerKey, now); err != nil {
			return nil, nil, now, err
		}
	}
	if target == nil || !policy.Sees(caller, target) {
		return nil, nil, now, apierr.KeyNotFound()
	}
	return target, caller, now, nil
}

// targetOf is k as the policy judges it at now (its credits as of now).
func targetOf(k *apikey.Key, now time.Time) policy.Target {
	return policy.Target{AccountID: k.AccountID, Permissions: perm.FromMap(k.Permissions), ExpiresAt: k.ExpiresAt,
		AllowedNetworks: k.AllowedNetworks, RateLimit: k.RateLimit, Credits: k.Credits.At(now)}
}

// sameCredits reports whether setting a to a key whose credits are b (both
// as of now) changes nothing anyone can see: what is left and the refill.
// Nothing is then written, and the refill clock stays.
func sameCredits(a, b *apikey.Credits) bool {
	if b == nil || a.Remaining != b.Remaining || (a.Refill == nil) != (b.Refill == nil) {
		return false
	}
	return a.Refill == nil || *a.Refill == *b.Refill
}

// creditsTooMany is a count of credits over apikey.MaxCredits: the
// request's field, a 400.
func creditsTooMany(field string) *apierr.Error {
	return apierr.Validation([]apierr.FieldError{{Location: "body", Field: field,
		Reason: fmt.Sprintf("the key would have more than %d credits", int64(apikey.MaxCredits))}})
}

// serviceError maps what a unit of work returned to the API's errors.
func serviceError(err error, name string) error {
	var ae *apierr.Error
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, store.ErrDuplicateName):
		return apierr.New(api.CodeDuplicateName, "An API key with this name already exists").With("name", name)
	case errors.Is(err, store.ErrNotFound):
		return apierr.KeyNotFound()
	case errors.Is(err, store.ErrIdempotencyLost):
		// The request's Idempotency-Key claim ran out and another attempt of
		// the same request took it over: that one's outcome stands.
		return apierr.New(api.CodeIdempotencyConflict, "Another attempt of this request with the same Idempotency-Key took over; retry to get its answer").
			With("replayable", true).With("state", "in_progress")
	}
	return apierr.Internal(err)
}
