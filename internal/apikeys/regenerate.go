package apikeys

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// MaxGracePeriod bounds how long a replaced secret may keep working (7 days, as the spec says).
const MaxGracePeriod = 7 * 24 * time.Hour

// Regenerate gives a managed key a new secret. The old one stops working when
// this commits, or after grace (never past the key's expiry); an earlier
// grace period ends at once. Keys the caller cannot see are not found.
//
// One unit of work locks the caller's key and the target (in id order, so two
// keys regenerating each other cannot deadlock), re-checks the caller and
// asks the policy: a secret rotated away by a concurrent regenerate can no
// longer rotate anything.
func (s *Service) Regenerate(ctx context.Context, p *auth.Principal, id string, grace time.Duration, opts ...UnitOption) (*Issued, error) {
	uo := applyUnitOptions(opts)
	if grace < 0 || grace > MaxGracePeriod {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/grace_period_minutes", Reason: "must be from 0 to 10080"}})
	}
	var issued *Issued
	err := s.store.Repo(p.Mode).InTx(ctx, func(tx store.Tx) error {
		target, caller, now, err := s.lockTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		// Authorization first: the answers below tell a key's state (deleted,
		// custom, switched off), which only a caller with power over it may learn.
		if e := policy.Authorize(caller, policy.RegenerateKey, targetOf(target, now)); e != nil {
			return e
		}
		if target.Deleted {
			return apierr.KeyNotFound()
		}
		if !target.Managed {
			return apierr.New(api.CodeKeyNotManaged, "Only managed keys can be regenerated; create a new key and delete this one")
		}
		if target.Status != apikey.StatusActive {
			return apierr.New(api.CodeKeyNotActive, "The API key is not active").With("status", target.Status)
		}
		if e := policy.MayTakeAway(target, policy.Rotate); e != nil {
			return e
		}
		if issued, err = rotate(ctx, tx, target, p.Mode, grace, now); err != nil {
			return err
		}
		if err := tx.LockAccount(ctx, target.AccountID); err != nil { // after the keys: the lock order
			return err
		}
		if err := recordBy(ctx, tx, p, audit.Regenerate, target, rotatedFields(target), now); err != nil {
			return err
		}
		return uo.recordIssued(ctx, tx, issued)
	})
	if err != nil {
		return nil, serviceError(err, "")
	}
	s.changed(p.Mode, issued.Key.ID)
	s.overlayUsage(p.Mode, issued.Key)
	return issued, nil
}

// lockKeys reads and locks the target key and the caller's own key (when the
// caller is a key), in ascending id order so that two units locking the same
// keys cannot deadlock. A missing target is nil, not an error: the caller is
// checked first. The caller's key, when it is not the target, is only
// re-read: it is locked shared where the store can (store.KeySharer), and
// both are read in one round trip where it can (store.KeysLocker).
func lockKeys(ctx context.Context, tx store.Tx, targetID, callerID string) (target, caller *apikey.Key, err error) {
	ids := []string{targetID}
	if callerID != "" && callerID != targetID {
		ids = append(ids, callerID)
		slices.Sort(ids)
	}
	shared := make([]bool, len(ids))
	for i, id := range ids {
		shared[i] = id == callerID && callerID != targetID
	}
	found, err := readKeys(ctx, tx, ids, shared)
	if err != nil {
		return nil, nil, err
	}
	for i, id := range ids {
		k := found[i]
		if k == nil {
			if id == callerID {
				return nil, nil, apierr.InvalidCredentials()
			}
			continue
		}
		if id == targetID {
			target = k
		}
		if id == callerID {
			caller = k
		}
	}
	if callerID == targetID && target != nil {
		c := *target // Current reads the caller; rotate changes the target
		caller = &c
	}
	return target, caller, nil
}

// readKeys locks ids in order (see lockKeys); a missing key is nil.
func readKeys(ctx context.Context, tx store.Tx, ids []string, shared []bool) ([]*apikey.Key, error) {
	if l, ok := tx.(store.KeysLocker); ok {
		return l.LockKeys(ctx, ids, shared)
	}
	out := make([]*apikey.Key, len(ids))
	for i, id := range ids {
		read := tx.Key
		if s, ok := tx.(store.KeySharer); ok && shared[i] {
			read = s.KeyShared
		}
		k, err := read(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out[i] = k
	}
	return out, nil
}

// rotate gives k a new secret inside tx, keeping the current one working
// for grace (and known until the next rotation: replaceSecret).
func rotate(ctx context.Context, tx store.Tx, k *apikey.Key, mode apikey.Mode, grace time.Duration, now time.Time) (*Issued, error) {
	var keepUntil *time.Time
	if grace > 0 {
		until := now.Add(grace)
		if k.ExpiresAt != nil && k.ExpiresAt.Before(until) {
			until = *k.ExpiresAt
		}
		keepUntil = &until
	}
	secret, err := replaceSecret(k, mode, keepUntil, now)
	if err != nil {
		return nil, err
	}
	if err := tx.UpdateKey(ctx, k); err != nil {
		return nil, err
	}
	return &Issued{Key: k, Mode: mode, Secret: secret}, nil
}

// replaceSecret mints k a new secret of its type and mode and returns it;
// the replaced secret becomes the previous one, working until keepUntil
// (nil: no grace, its grace ends now). Regenerate, rotate-managed and the
// leak response rotate through it alike.
//
// The replaced secret's hash is kept until the key rotates again, grace or
// not (issue 18): the secret stays known, so verify answers REVOKED for it
// (not NOT_FOUND), a leak report of it is a true positive that changes
// nothing, and the secret that rotated its own key can still fetch that
// rotation's stored answer (policy.OwnRotation). The hash of the secret
// replaced before is forgotten here: a secret rotated away twice is no
// key's.
func replaceSecret(k *apikey.Key, mode apikey.Mode, keepUntil *time.Time, now time.Time) (string, error) {
	secret, err := keys.New(secretKind(k.Type), mode == apikey.Sandbox)
	if err != nil {
		return "", err
	}
	until := now
	if keepUntil != nil {
		until = *keepUntil
	}
	k.PrevSecretHash, k.PrevSecretExpiresAt = k.SecretHash, &until
	k.SecretHash, k.KeyHint = keys.Hash(secret), keys.Hint(secret)
	k.UpdatedAt = now
	return secret, nil
}

// secretKind is the kind of secret a key of type t holds.
func secretKind(t string) keys.Kind {
	if t == apikey.TypePublishable {
		return keys.KindPublishable
	}
	return keys.KindSecret
}

// rotatedFields are what an event says of a rotation.
func rotatedFields(k *apikey.Key) map[string]any {
	return map[string]any{"key_hint": k.KeyHint, "previous_key_expires_at": timeValue(k.PrevSecretExpiresAt)}
}
