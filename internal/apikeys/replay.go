package apikeys

import (
	"context"
	"errors"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// AuthorizeReplay decides whether p may receive the stored answer of an
// earlier create or regenerate made with the same Idempotency-Key. It
// returns nil, or the error a fresh request of p would get.
//
// A stored answer carries a secret, so handing it out is an execution as
// far as authorization goes: it passes the same checks as the original, for
// the credential presenting it, against the state as it is now. The server
// answers a replay only after its fingerprint matched (the exact credential
// of the original, the same request) and then this returned nil; this is
// the one place that decides, so that any exception to the rule is made
// here (there is one: a previous secret fetching the answer of its own
// rotation, below).
//
// targetID is the key the answer's secret belongs to: for a regenerate the
// key in the path, for a create the key the stored answer issued. In one
// unit of work it re-reads the presenting caller's key (a secret rotated
// away, a key disabled, deleted or expired since is refused as it would be
// on a fresh request: 401) and asks the policy about that key as it stands
// now (permission, account, power, life: 403, or 404 for a key the caller
// does not see). The key's own state (deleted, not active, not managed) is
// the use case's precondition for running, not a rule of who may act: a
// replay reports what ran, so it is not checked here.
//
// The one exception (issue 18; policy.OwnRotation, policy.ReplayAuthorize):
// the previous secret of a key, in its grace period or with its grace
// ended, may receive the stored answer of a regenerate of its own key, i.e.
// of the rotation that replaced it, and nothing else. The server lets it
// reach this point only with an Idempotency-Key whose completed record's
// fingerprint matched that exact secret (so the answer is its own), never
// the use case, so it can fetch its rotation's answer but never start one.
// It is judged as the secret it was: its key, re-read here, must still
// hold that secret as its previous one (a key rotated again since forgot
// it: 401), be active, not deleted, not expired, and hold the permission
// to regenerate itself; otherwise it gets the refusal it gets today (the
// server answers 401 40101, or 403 40304 in grace).
func (s *Service) AuthorizeReplay(ctx context.Context, p *auth.Principal, action policy.Action, targetID string) error {
	if action != policy.CreateKey && action != policy.RegenerateKey {
		return apierr.Internal(errors.New("apikeys: replay of an action that issues no secret: " + string(action)))
	}
	err := s.store.Repo(p.Mode).InTx(ctx, func(tx store.Tx) error {
		// Both keys are read (and locked) in id order, as Regenerate does, so
		// a replay and a concurrent rotation of the same keys cannot deadlock.
		target, callerKey, err := lockKeys(ctx, tx, targetID, p.KeyID)
		if err != nil {
			return err
		}
		caller, now := p, s.now().UTC()
		if callerKey != nil {
			if caller, err = policy.Current(p, callerKey, now); err != nil {
				return err
			}
		}
		if target == nil {
			return apierr.KeyNotFound()
		}
		if e := policy.ReplayAuthorize(caller, action, target.ID, targetOf(target, now)); e != nil {
			return e
		}
		return nil
	})
	if err != nil {
		return serviceError(err, "")
	}
	return nil
}
