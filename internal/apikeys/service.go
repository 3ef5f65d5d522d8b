// Package apikeys holds the business rules of the two operations (create a
// custom key, regenerate a managed one) and the provisioning of managed keys.
// It speaks store types and apierr errors; HTTP lives in server/.
package apikeys

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Service implements the operations over a store.
type Service struct {
	Store   store.Store
	Catalog perm.Catalog
	Usage   *auth.UsageTracker // optional: overlays not yet flushed last use
	Now     func() time.Time
}

// Issued is a key together with its plaintext secret, which exists only here.
type Issued struct {
	Key    *store.Key
	Mode   store.Mode
	Secret string
}

// CreateInput is a validated create request.
type CreateInput struct {
	Name        string
	Permissions map[string][]string
	ExpiresAt   *time.Time
	Metadata    map[string]string
}

const maxMetadataKeyLen = 40

// Create issues a custom secret key on accountID for the caller p.
func (s *Service) Create(ctx context.Context, p *auth.Principal, accountID string, in CreateInput) (*Issued, error) {
	if !p.CanActOn(accountID) {
		return nil, apierr.New(api.CodeAccountForbidden, "This credential may not act on this account").With("account_id", accountID)
	}
	var fieldErrs []apierr.FieldError
	for k, v := range in.Metadata {
		if len(k) == 0 || len([]rune(k)) > maxMetadataKeyLen {
			fieldErrs = append(fieldErrs, apierr.FieldError{Location: "body", Field: "/metadata", Reason: fmt.Sprintf("metadata keys must be 1 to %d characters", maxMetadataKeyLen)})
			break
		}
		// Not every store can hold U+0000 (PostgreSQL's jsonb cannot).
		if strings.ContainsRune(k, 0) || strings.ContainsRune(v, 0) {
			fieldErrs = append(fieldErrs, apierr.FieldError{Location: "body", Field: "/metadata", Reason: "metadata keys and values must not contain NUL characters"})
			break
		}
	}
	if len(fieldErrs) > 0 {
		return nil, apierr.Validation(fieldErrs)
	}
	if unknown := s.Catalog.Unknown(in.Permissions); len(unknown) > 0 {
		return nil, apierr.New(api.CodeUnknownPermission, "Unknown permission").With("unknown", unknown)
	}
	if missing := p.Permissions.Missing(perm.FromMap(in.Permissions)); len(missing) > 0 {
		return nil, apierr.New(api.CodePrivilegeEscalation, "The new key would hold permissions that the caller lacks").With("missing", missing)
	}
	now := s.Now().UTC()
	if in.ExpiresAt != nil && !in.ExpiresAt.After(now) {
		return nil, apierr.New(api.CodeInvalidExpiry, "expires_at must be in the future")
	}
	repo := s.Store.Repo(p.Mode)
	k := &store.Key{
		AccountID:   accountID,
		Name:        in.Name,
		Type:        store.TypeSecret,
		Permissions: normalize(in.Permissions),
		Metadata:    in.Metadata,
		Status:      store.StatusActive,
		ExpiresAt:   utcPtr(in.ExpiresAt),
		CreatedAt:   now,
		UpdatedAt:   now,
	}
	// The insert itself checks that the account exists (a foreign key),
	// which saves a query on every create.
	issued, err := s.insert(ctx, repo, k, p.Mode)
	switch {
	case errors.Is(err, store.ErrNoAccount):
		return nil, apierr.New(api.CodeAccountNotFound, "Account not found").With("account_id", accountID)
	case errors.Is(err, store.ErrDuplicateName):
		return nil, apierr.New(api.CodeDuplicateName, "An API key with this name already exists").With("name", in.Name)
	}
	if err != nil {
		return nil, apierr.Internal(err)
	}
	return issued, nil
}

// insert mints id and secret and stores k, retrying on the (astronomically
// unlikely) collision of either.
func (s *Service) insert(ctx context.Context, repo store.Repository, k *store.Key, mode store.Mode) (*Issued, error) {
	kind := keys.KindSecret
	if k.Type == store.TypePublishable {
		kind = keys.KindPublishable
	}
	for attempt := 0; ; attempt++ {
		id, err := keys.NewID()
		if err != nil {
			return nil, err
		}
		secret, err := keys.New(kind, mode == store.Sandbox)
		if err != nil {
			return nil, err
		}
		k.ID, k.SecretHash = id, keys.Hash(secret)
		err = repo.InsertKey(ctx, k)
		if errors.Is(err, store.ErrDuplicateKeyID) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Issued{Key: k, Mode: mode, Secret: secret}, nil
	}
}

// MaxGracePeriod bounds how long a replaced secret may keep working (7 days, as the spec says).
const MaxGracePeriod = 7 * 24 * time.Hour

// Regenerate gives a managed key a new secret. The old one stops working when
// this commits, or after grace (never past the key's expiry); an earlier
// grace period ends at once. Keys the caller cannot see are not found.
func (s *Service) Regenerate(ctx context.Context, p *auth.Principal, id string, grace time.Duration) (*Issued, error) {
	if grace < 0 || grace > MaxGracePeriod {
		return nil, apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/grace_period_minutes", Reason: "must be from 0 to 10080"}})
	}
	kind := keys.KindSecret
	var secret string
	k, err := s.Store.Repo(p.Mode).UpdateKey(ctx, id, func(k *store.Key) error {
		if k.Deleted || !p.CanActOn(k.AccountID) {
			return store.ErrNotFound
		}
		if !k.Managed {
			return apierr.New(api.CodeKeyNotManaged, "Only managed keys can be regenerated; create a new key and delete this one")
		}
		if k.Status != store.StatusActive {
			return apierr.New(api.CodeKeyNotActive, "The API key is not active").With("status", k.Status)
		}
		if k.Type == store.TypePublishable {
			kind = keys.KindPublishable
		}
		var err error
		if secret, err = keys.New(kind, p.Mode == store.Sandbox); err != nil {
			return err
		}
		now := s.Now().UTC()
		k.PrevSecretHash, k.PrevSecretExpiresAt = nil, nil
		if grace > 0 {
			until := now.Add(grace)
			if k.ExpiresAt != nil && k.ExpiresAt.Before(until) {
				until = *k.ExpiresAt
			}
			k.PrevSecretHash, k.PrevSecretExpiresAt = k.SecretHash, &until
		}
		k.SecretHash = keys.Hash(secret)
		k.UpdatedAt = now
		return nil
	})
	var ae *apierr.Error
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.KeyNotFound()
	case errors.As(err, &ae):
		return nil, ae
	case err != nil:
		return nil, apierr.Internal(err)
	}
	s.overlayUsage(p.Mode, k)
	return &Issued{Key: k, Mode: p.Mode, Secret: secret}, nil
}

// overlayUsage shows a use that is still waiting to be flushed.
func (s *Service) overlayUsage(mode store.Mode, k *store.Key) {
	if s.Usage == nil {
		return
	}
	if u, ok := s.Usage.Pending(mode, k.ID); ok && (k.LastUsedAt == nil || u.At.After(*k.LastUsedAt)) {
		at, ip := u.At, u.IP
		k.LastUsedAt, k.LastUsedIP = &at, &ip
	}
}

// ManagedKeyNames are the names given to the platform-provisioned keys.
const (
	ManagedSecretName      = "Managed secret key"
	ManagedPublishableName = "Managed publishable key"
)

// ErrAccountExists is returned by Bootstrap for an account that has keys already.
var ErrAccountExists = errors.New("account exists: its managed secrets were shown when it was created; rotate them with regenerate")

// Bootstrap creates the account in each mode with its managed keys: a secret
// key holding every permission in the catalog, and a publishable key holding
// none that manage keys.
func (s *Service) Bootstrap(ctx context.Context, accountID string, modes []store.Mode) ([]Issued, error) {
	now := s.Now().UTC()
	var out []Issued
	for _, mode := range modes {
		repo := s.Store.Repo(mode)
		if err := repo.CreateAccount(ctx, accountID, now); errors.Is(err, store.ErrAccountExists) {
			return nil, ErrAccountExists
		} else if err != nil {
			return nil, err
		}
		for _, k := range []*store.Key{
			{Name: ManagedSecretName, Type: store.TypeSecret, Permissions: s.Catalog.All()},
			{Name: ManagedPublishableName, Type: store.TypePublishable, Permissions: PublishablePermissions(s.Catalog)},
		} {
			k.AccountID, k.Status, k.Managed, k.CreatedAt, k.UpdatedAt = accountID, store.StatusActive, true, now, now
			issued, err := s.insert(ctx, repo, k, mode)
			if err != nil {
				return nil, err
			}
			out = append(out, *issued)
		}
	}
	return out, nil
}

// PublishablePermissions are the read-only permissions a browser may hold:
// the catalog's "read" actions, except on API keys.
func PublishablePermissions(c perm.Catalog) map[string][]string {
	m := map[string][]string{}
	for res, actions := range c {
		if res != "account:api:key" && actions["read"] {
			m[res] = []string{"read"}
		}
	}
	return m
}

func normalize(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if v == nil {
			v = []string{}
		}
		out[k] = v
	}
	return out
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
