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
	// LeakGraceEnded, or "" (nothing: not ours, or dead already).
	Action string
	KeyID  string // the key found ("" when not ours)
	Mode   apikey.Mode
}

// What a leak report does to a key.
const (
	LeakDeleted    = "deleted"     // a custom key's current secret: the key is deleted
	LeakRotated    = "rotated"     // a managed key's current secret: rotated without grace
	LeakGraceEnded = "grace_ended" // a replaced secret in its grace: the grace ends now
)

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
//   - then, in one unit of work on the key, re-read under lock: the current
//     secret of a custom key deletes the key (as Delete does); the current
//     secret of a managed key rotates it without grace, keeping the leaked
//     hash as a previous secret whose grace ended now (so the secret stays
//     known: a later report of it is still a true positive and changes
//     nothing); a previous secret still in its grace ends the grace now.
//     Anything already dead changes nothing and records nothing, so a
//     report sent twice acts once. Each change records one audit event (the
//     scanner, the source and the URL in its changes).
//
// Options.Changed hears of every changed key after its unit committed. A
// store failure stops the report: the tokens handled before it stay handled,
// and a retry of the whole report is harmless.
func (s *Service) ReportLeaks(ctx context.Context, by LeakReporter, tokens []LeakedToken) ([]LeakVerdict, error) {
	out := make([]LeakVerdict, len(tokens))
	for i, t := range tokens {
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
		if action != "" {
			s.changed(mode, k.ID)
		}
	}
	return out, nil
}

// revokeLeaked kills the secret whose hash leaked on key id, judging the key
// as it is under lock (a concurrent regenerate may have made the leaked
// current secret a previous one). It returns what it did to the key ("" for
// nothing), once committed.
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
		switch {
		case bytes.Equal(k.SecretHash, hash) && k.Deleted:
			return nil // revoked already
		case bytes.Equal(k.SecretHash, hash) && !k.Managed:
			markDeleted(k, now)
			action, what, fields = audit.Delete, LeakDeleted, map[string]any{"deleted": true}
		case bytes.Equal(k.SecretHash, hash):
			// No grace: the leaked secret is kept as the previous one with
			// its grace ended at now, so it no longer authenticates (grace is
			// checked at every use) and is still recognised when reported
			// again. Nobody sees the new secret.
			if _, err := replaceSecret(k, mode, &now, now); err != nil {
				return err
			}
			action, what, fields = audit.Regenerate, LeakRotated, rotatedFields(k)
		case bytes.Equal(k.PrevSecretHash, hash) && k.InGrace(now):
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
