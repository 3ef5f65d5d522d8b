package apikeys

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// ManagedKeyNames are the names given to the platform-provisioned keys.
const (
	ManagedSecretName      = "Managed secret key"
	ManagedPublishableName = "Managed publishable key"
)

// ErrAccountExists is returned by Bootstrap for an account that exists in one
// of the modes asked for.
var ErrAccountExists = errors.New("account exists: its managed secrets were shown when it was created; rotate them with regenerate")

// platform is the actor of what the service does on its own.
var platform = apikey.Actor{Kind: apikey.ActorPlatform, ID: "bootstrap"}

// Bootstrap creates the account in each mode with its managed keys: a secret
// key holding every permission in the catalog, and a publishable key holding
// none that manage keys. It is all or nothing across modes: an account that
// exists in any mode asked for is refused before anything is written, and a
// mode that fails undoes the modes already made (their secrets were never
// shown).
func (s *Service) Bootstrap(ctx context.Context, accountID string, modes []apikey.Mode) ([]Issued, error) {
	var exists []string
	for _, mode := range modes {
		ok, err := s.store.Repo(mode).AccountExists(ctx, accountID)
		if err != nil {
			return nil, err
		}
		if ok {
			exists = append(exists, string(mode))
		}
	}
	if len(exists) > 0 {
		return nil, fmt.Errorf("%w (in mode %s)", ErrAccountExists, strings.Join(exists, ", "))
	}
	now := s.now().UTC()
	var out []Issued
	var done []apikey.Mode
	for _, mode := range modes {
		err := s.store.Repo(mode).InTx(ctx, func(tx store.Tx) error {
			if err := tx.CreateAccount(ctx, accountID, now); err != nil {
				return err
			}
			for _, k := range []*apikey.Key{
				{Name: ManagedSecretName, Type: apikey.TypeSecret, Permissions: s.catalog.All()},
				{Name: ManagedPublishableName, Type: apikey.TypePublishable, Permissions: PublishablePermissions(s.catalog)},
			} {
				k.AccountID, k.Status, k.Managed, k.CreatedAt, k.UpdatedAt, k.CreatedBy = accountID, apikey.StatusActive, true, now, now, platform
				issued, err := insert(ctx, tx, k, mode)
				if err != nil {
					return err
				}
				if err := record(ctx, tx, mode, audit.Bootstrap, k, platform, "", createdFields(k), now); err != nil {
					return err
				}
				out = append(out, *issued)
			}
			return nil
		})
		if err != nil {
			if errors.Is(err, store.ErrAccountExists) {
				err = fmt.Errorf("%w (in mode %s)", ErrAccountExists, mode) // created meanwhile by someone else
			}
			return nil, errors.Join(err, s.undo(ctx, accountID, done))
		}
		done = append(done, mode)
	}
	return out, nil
}

// undo removes what Bootstrap made in modes before a later mode failed.
func (s *Service) undo(ctx context.Context, accountID string, modes []apikey.Mode) error {
	var errs []error
	for _, mode := range modes {
		err := s.store.Repo(mode).InTx(ctx, func(tx store.Tx) error { return tx.DeleteAccount(ctx, accountID) })
		if err != nil {
			errs = append(errs, fmt.Errorf("undo account %s in mode %s: %w", accountID, mode, err))
		}
	}
	return errors.Join(errs...)
}

// ErrNoRootCredential is returned by RotateManaged when the account's managed
// secret key cannot be made to work again by rotating it: it is deleted or
// expired (neither can happen through the API; only through the database).
var ErrNoRootCredential = errors.New("no working root credential can be restored")

// RotateManaged gives an account's managed keys in mode new secrets, without
// grace, as the platform (no caller: the operator runs it, e.g. the demo
// account at each start). It is the operator's way back to a working root
// credential, so a managed secret key found switched off (data from before
// the API refused that, or a database edit) is switched back on in the same
// unit, recorded as an enable event before the regenerate event, and its
// Issued says Reenabled. A managed publishable key stays as its owner left
// it. A managed secret key that is deleted or expired cannot be restored:
// ErrNoRootCredential, and nothing is changed.
func (s *Service) RotateManaged(ctx context.Context, accountID string, mode apikey.Mode) ([]Issued, error) {
	managed, err := s.store.Repo(mode).ListManagedKeys(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var out []Issued
	err = s.store.Repo(mode).InTx(ctx, func(tx store.Tx) error {
		out = out[:0]
		// Lock order: keys in ascending id order, as every unit of work.
		slices.SortFunc(managed, func(a, b *apikey.Key) int { return strings.Compare(a.ID, b.ID) })
		now := s.now().UTC()
		var locked []*apikey.Key
		for _, m := range managed {
			k, err := tx.Key(ctx, m.ID)
			if err != nil {
				return err
			}
			locked = append(locked, k)
		}
		if err := tx.LockAccount(ctx, accountID); err != nil {
			return err
		}
		if err := restorable(locked, accountID, mode, now); err != nil {
			return err
		}
		for _, k := range locked {
			reenabled := false
			if policy.Root(k) && k.Status != apikey.StatusActive {
				// Written by rotate's UpdateKey below, with the new secret.
				k.Status, k.UpdatedAt, reenabled = apikey.StatusActive, now, true
				if err := record(ctx, tx, mode, audit.Enable, k, platform, "", map[string]any{"status": apikey.StatusActive}, now); err != nil {
					return err
				}
			}
			issued, err := rotate(ctx, tx, k, mode, 0, now)
			if err != nil {
				return err
			}
			if err := record(ctx, tx, mode, audit.Regenerate, k, platform, "", rotatedFields(k), now); err != nil {
				return err
			}
			issued.Reenabled = reenabled
			out = append(out, *issued)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, is := range out {
		s.changed(mode, is.Key.ID)
	}
	return out, nil
}

// restorable checks that rotating the account's managed keys (locked) leaves
// it a working root credential: a managed secret key that is neither deleted
// nor expired (switched off is repaired by RotateManaged). An account with no
// managed key at all is left to the caller (it did not exist: LockAccount
// said so already, or it is answered as having no managed keys).
func restorable(locked []*apikey.Key, accountID string, mode apikey.Mode, now time.Time) error {
	if len(locked) == 0 {
		return nil
	}
	for _, k := range locked {
		if !policy.Root(k) {
			continue
		}
		switch {
		case k.Deleted:
			return fmt.Errorf("%w: the managed secret key %s of account %s in mode %s is deleted; nothing was changed", ErrNoRootCredential, k.ID, accountID, mode)
		case k.ExpiresAt != nil && !now.Before(*k.ExpiresAt):
			return fmt.Errorf("%w: the managed secret key %s of account %s in mode %s expired at %s; nothing was changed",
				ErrNoRootCredential, k.ID, accountID, mode, k.ExpiresAt.UTC().Format(time.RFC3339))
		}
		return nil
	}
	return fmt.Errorf("%w: account %s has no managed secret key in mode %s that is not deleted; nothing was changed", ErrNoRootCredential, accountID, mode)
}

// PublishablePermissions are the read-only permissions a browser may hold:
// the catalog's "read" actions, except on API keys and their audit trail.
func PublishablePermissions(c perm.Catalog) map[string][]string {
	m := map[string][]string{}
	for res, actions := range c {
		if res != "account:api:key" && res != "account:audit" && actions["read"] {
			m[res] = []string{"read"}
		}
	}
	return m
}
