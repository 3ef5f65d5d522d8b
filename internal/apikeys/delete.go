package apikeys

import (
	"context"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Delete revokes a custom key: marked deleted (kept for the record), its
// secrets refused from the next request on (the credential caches are told
// once it committed: at once on this replica, within the documented bound on
// the others), its name free again. Deleting a deleted key answers
// the key as it is and records nothing, so a retry is harmless; like every
// other answer about the key it comes only after the caller was authorized.
// Managed keys are rotated, never deleted. A caller that may not read keys
// gets the key back without its metadata and last use (policy.ViewFor).
func (s *Service) Delete(ctx context.Context, p *auth.Principal, id string) (*apikey.Key, error) {
	var deleted *apikey.Key
	var caller *auth.Principal // as re-read in the unit: what it may see of the answer
	wrote := false
	err := s.store.Repo(p.Mode).InTx(ctx, func(tx store.Tx) error {
		target, c, now, err := s.lockTarget(ctx, tx, p, id)
		if err != nil {
			return err
		}
		caller = c
		// Authorization first, for a deleted key too: the answer (the key
		// as it is) is only for a caller with power over it.
		if e := policy.Authorize(caller, policy.DeleteKey, targetOf(target, now)); e != nil {
			return e
		}
		deleted = target
		if target.Deleted {
			return nil
		}
		if e := policy.MayTakeAway(target, policy.Revoke); e != nil {
			return e
		}
		if err := tx.LockAccount(ctx, target.AccountID); err != nil {
			return err
		}
		markDeleted(target, now)
		if err := tx.UpdateKey(ctx, target); err != nil {
			return err
		}
		wrote = true
		return recordBy(ctx, tx, p, audit.Delete, target, map[string]any{"deleted": true}, now)
	})
	if err != nil {
		return nil, serviceError(err, "")
	}
	if wrote { // deleting a deleted key changed nothing
		s.changed(p.Mode, deleted.ID)
	}
	s.overlayUsage(p.Mode, deleted)
	return policy.ViewFor(caller, deleted, false), nil
}

// markDeleted revokes k: deleted, and no secret of it (current or in grace)
// authenticates any more. DELETE and the leak response revoke alike. Its
// secrets stay known by their hashes, the previous one too with any grace
// ended now: every secret of a deleted key verifies REVOKED and a leak
// report of it is a true positive that changes nothing (replaced secrets
// are kept until the key rotates again, and a deleted key never does).
// (Today no deleted key has a previous secret: managed keys are never
// deleted and custom keys never rotated; this keeps it so if that changes.)
func markDeleted(k *apikey.Key, now time.Time) {
	k.Deleted, k.UpdatedAt = true, now
	if k.PrevSecretHash != nil && k.InGrace(now) {
		k.PrevSecretExpiresAt = &now
	}
}
