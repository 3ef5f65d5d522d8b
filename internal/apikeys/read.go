package apikeys

import (
	"context"
	"errors"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Get returns one key of the caller's account and mode, deleted or not. A
// key the caller may not see is not found. Reads hand out no secret, so the
// power and life rules do not apply.
func (s *Service) Get(ctx context.Context, p *auth.Principal, id string) (*apikey.Key, error) {
	k, err := s.store.Repo(p.Mode).GetKey(ctx, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, apierr.KeyNotFound()
	case err != nil:
		return nil, apierr.Internal(err)
	case !policy.Sees(p, k):
		return nil, apierr.KeyNotFound()
	}
	s.overlayUsage(p.Mode, k)
	return k, nil
}

// ListInput selects a page of keys.
type ListInput struct {
	Status, Type, CreatedBy string
	Managed                 *bool
	Deleted                 bool
	Cursor                  string
	Limit                   int
}

// Page is one page of a list and where the next one starts ("" when none).
type Page[T any] struct {
	Items      []T
	NextCursor string
}

// DefaultPageSize is a page's size when the request names none.
const DefaultPageSize = 20

// List returns a page of an account's keys in (created_at, id) order: a key
// created or deleted while a client pages makes no other key skip or repeat.
func (s *Service) List(ctx context.Context, p *auth.Principal, accountID string, in ListInput) (*Page[*apikey.Key], error) {
	if e := policy.Authorize(p, policy.ReadKeys, policy.Target{AccountID: accountID}); e != nil {
		return nil, e
	}
	f := store.KeyFilter{AccountID: accountID, Status: in.Status, Type: in.Type, Managed: in.Managed,
		CreatedBy: in.CreatedBy, Deleted: in.Deleted, Now: s.now().UTC(), Limit: pageSize(in.Limit) + 1}
	if in.Cursor != "" {
		c, e := decodeKeyCursor(in.Cursor)
		if e != nil {
			return nil, e
		}
		f.After = c
	}
	repo := s.store.Repo(p.Mode)
	ks, err := repo.ListKeys(ctx, f)
	if err != nil {
		return nil, apierr.Internal(err)
	}
	// A key is its account's (deleting an account deletes its keys): only
	// an empty page asks whether the account exists, one read fewer (a
	// round trip on PostgreSQL) for every other page.
	if len(ks) == 0 {
		if e := s.accountExists(ctx, repo, accountID); e != nil {
			return nil, e
		}
	}
	page := &Page[*apikey.Key]{Items: ks}
	if len(ks) > pageSize(in.Limit) {
		page.Items = ks[:pageSize(in.Limit)]
		last := page.Items[len(page.Items)-1]
		page.NextCursor = encodeKeyCursor(store.KeyCursor{CreatedAt: last.CreatedAt, ID: last.ID})
	}
	for _, k := range page.Items {
		s.overlayUsage(p.Mode, k)
	}
	return page, nil
}

func pageSize(n int) int {
	if n <= 0 {
		return DefaultPageSize
	}
	return n
}

func (s *Service) accountExists(ctx context.Context, repo store.Repository, accountID string) *apierr.Error {
	ok, err := repo.AccountExists(ctx, accountID)
	if err != nil {
		return apierr.Internal(err)
	}
	if !ok {
		return apierr.New(api.CodeAccountNotFound, "Account not found").With("account_id", accountID)
	}
	return nil
}
