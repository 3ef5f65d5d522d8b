package apikeys

import (
	"bytes"
	"context"
	"errors"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
)

// LeakedToken is one string a secret scanner found in a public place.
type LeakedToken struct {
	Token  string
	URL    string // where it was found
	Source string // what was scanned (content, commit, …)
}

// LeakReporter is who reported the leaks: the scanner (e.g. "github") and
// the request that carried the report.
type LeakReporter struct {
	Scanner   string
	RequestID string
	ClientIP  string
}

// LeakVerdict is what a leak report found and did for one token.
type LeakVerdict struct {
	// Ours: the token is or was a secret the store knows by its hash.
	Ours bool
	// Action is what the report did to the key: LeakDeleted, LeakRotated,
	// LeakGraceEnded, LeakPublic (nothing changed, the report recorded), or
	// "" (nothing: not ours, or dead already).
	Action string
	KeyID  string // the key found ("" when not ours)
	Mode   apikey.Mode
}

// TruePositive says whether the token is a leaked secret of ours: ours, and
// not a publishable key's live secret, which is public by design (a report
// of it is a false positive, though the key is ours).
func (v LeakVerdict) TruePositive() bool { return v.Ours && v.Action != LeakPublic }

// What a leak report does to a key.
const (
	LeakDeleted    = "deleted"     // a custom key's current secret: the key is deleted
	LeakRotated    = "rotated"     // a managed key's current secret: rotated without grace
	LeakGraceEnded = "grace_ended" // a replaced secret in its grace: the grace ends now
	// LeakPublic: a publishable key's live secret (current, or replaced and
	// in its grace). Nothing changes; the report is recorded for the owner.
	LeakPublic = "public"
)

// ReasonPublishableReported is the reason of the event that records a report
// of a publishable key's live secret (other leak events say "leaked").
const ReasonPublishableReported = "publishable_key_reported"

// leakActor is the actor of every change a leak report makes: the platform,
// acting on its own when a scanner tells it a secret is public. (The spec's
// actor kinds are a closed enum in responses; a new kind would break clients.)
func leakActor(by LeakReporter) apikey.Actor {
	return apikey.Actor{Kind: apikey.ActorPlatform, ID: "secret-scanning", RequestID: by.RequestID}
}

// ReportLeaks makes every reported secret of ours dead at once, and says for
// each token whether it is or was ours or never one this service knows, and
// what it did. For each token, in order:
//
//   - its shape and checksum first (keys.Parse): anything else is not ours,
//     looked up nowhere;
//   - then its key by hash, in the token's own mode (_test_ → sandbox);
//   - then, in one unit of work on the key, re-read under lock: a live
//     secret (current, or replaced and in its grace) of a publishable key
//     changes nothing and is recorded (see below); the current
//     secret of a custom key deletes the key (as Delete does); the current
//     secret of a managed key rotates it without grace, keeping the leaked
//     hash as a previous secret whose grace ended now (so the secret stays
//     known: a later report of it is still a true positive and changes
//     nothing); a previous secret still in its grace ends the grace now.
//     Anything already dead changes nothing and records nothing, so a
//     report sent twice acts once. Each change records one audit event (the
//     scanner, the source and the URL in its changes).
//
// Publishable keys (pk_) are embedded in checkout pages by design, so
// finding one in public code is no leak: rotating or revoking it would break
// the merchant's checkout, with the new key shown to nobody, and anyone could
// do that to any merchant by pushing the page to a public repository. So a
// publishable key's live secret is never changed by a report: its verdict is
// LeakPublic (label false_positive), and each report of it records one
// update event with no field change (reason ReasonPublishableReported), so
// the owner sees it was reported (once per report, however many times the
// report names it, with the first URL). Reporting it again records again: each
// report is a fact the owner may want to see, and GitHub's signature bounds
// who can send them. A publishable secret already dead is as any dead one.
//
// Options.Changed hears of every changed key after its unit committed. A
// store failure stops the report: the tokens handled before it stay handled,
// and a retry of the whole report is harmless.
func (s *Service) ReportLeaks(ctx context.Context, by LeakReporter, tokens []LeakedToken) ([]LeakVerdict, error) {
	out := make([]LeakVerdict, len(tokens))
	// A publishable token recorded once in this report is not recorded again
	// when the report names it twice (e.g. found at two URLs): one event per
	// publishable token per report.
	public := map[string]LeakVerdict{}
	for i, t := range tokens {
		if v, ok := public[t.Token]; ok {
			out[i] = v
			continue
		}
		parsed, err := keys.Parse(t.Token)
		if err != nil {
			continue // malformed or a bad checksum: never one of ours
		}
		mode := apikey.Live
		if parsed.Sandbox {
			mode = apikey.Sandbox
		}
		hash := keys.Hash(t.Token)
		k, err := s.store.Repo(mode).KeyBySecretHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		action, err := s.revokeLeaked(ctx, mode, k.ID, hash, by, t)
		if err != nil {
			return nil, err
		}
		out[i] = LeakVerdict{Ours: true, Action: action, KeyID: k.ID, Mode: mode}
		switch action {
		case "":
		case LeakPublic: // recorded, not changed: the credential caches keep the key
			public[t.Token] = out[i]
		default:
			s.changed(mode, k.ID)
		}
	}
	return out, nil
}

// revokeLeaked kills the secret whose hash leaked on key id, judging the key
// as it is under lock (a concurrent regenerate may have made the leaked
// current secret a previous one). It returns what it did to the key ("" for
// nothing, LeakPublic for a publishable key's live secret: recorded, not
// changed), once committed.
func (s *Service) revokeLeaked(ctx context.Context, mode apikey.Mode, id string, hash []byte, by LeakReporter, t LeakedToken) (string, error) {
	done := ""
	err := s.store.Repo(mode).InTx(ctx, func(tx store.Tx) error {
		done = ""
		k, err := tx.Key(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		now := s.now().UTC()
		var action, what string
		var fields map[string]any
		current, inGrace := bytes.Equal(k.SecretHash, hash), bytes.Equal(k.PrevSecretHash, hash) && k.InGrace(now)
		switch {
		case current && k.Deleted:
			return nil // revoked already
		case (current || inGrace) && k.Type == apikey.TypePublishable && !k.Deleted:
			// Public by design (see ReportLeaks): the key is not written
			// (its updated_at stays), only the report is recorded, in the
			// account's audit chain, hence under the account's lock.
			if err := tx.LockAccount(ctx, k.AccountID); err != nil { // after the key: the lock order
				return err
			}
			fields := map[string]any{"reason": ReasonPublishableReported, "leak_scanner": by.Scanner, "leak_source": t.Source, "leak_url": t.URL}
			done = LeakPublic
			return record(ctx, tx, mode, audit.Update, k, leakActor(by), by.ClientIP, fields, now)
		case current && !k.Managed:
			markDeleted(k, now)
			action, what, fields = audit.Delete, LeakDeleted, map[string]any{"deleted": true}
		case current:
			// No grace: the leaked secret is kept as the previous one with
			// its grace ended at now, so it no longer authenticates (grace is
			// checked at every use) and is still recognised when reported
			// again. Nobody sees the new secret.
			if _, err := replaceSecret(k, mode, &now, now); err != nil {
				return err
			}
			action, what, fields = audit.Regenerate, LeakRotated, rotatedFields(k)
		case inGrace:
			k.PrevSecretExpiresAt, k.UpdatedAt = &now, now
			action, what, fields = audit.Update, LeakGraceEnded, map[string]any{"previous_key_expires_at": timeValue(k.PrevSecretExpiresAt)}
		default:
			return nil // a previous secret whose grace ended, or rotated away since the lookup: dead
		}
		if err := tx.UpdateKey(ctx, k); err != nil {
			return err
		}
		if err := tx.LockAccount(ctx, k.AccountID); err != nil { // after the key: the lock order
			return err
		}
		fields["reason"], fields["leak_scanner"], fields["leak_source"], fields["leak_url"] = "leaked", by.Scanner, t.Source, t.URL
		done = what
		return record(ctx, tx, mode, action, k, leakActor(by), by.ClientIP, fields, now)
	})
	if err != nil {
		return "", err
	}
	return done, nil
}
