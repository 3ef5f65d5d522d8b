package client

import (
	"context"
	"fmt"
	"iter"

	"github.com/hsrcpay/apikeys/client/oapi"
)

// ListAPIKeysOptions selects and pages the keys ListAPIKeys returns; the zero
// value lists every key that is not deleted.
type ListAPIKeysOptions struct {
	// Limit is the page size, 1 to 100; 0 leaves it to the server (20).
	// ListAPIKeys fetches every page whatever the size. Any other value is
	// an *ArgumentError, before any request.
	Limit int
	// Status keeps keys with this status only ("" for any). StatusExpired
	// is an ACTIVE key past its expiry; StatusActive then means not expired.
	Status KeyStatus
	// Type keeps TypeSecret or TypePublishable keys only ("" for both).
	Type KeyType
	// Managed keeps managed (true) or custom (false) keys only (nil for both).
	Managed *bool
	// CreatedBy keeps the keys created by this key id, JWT subject or
	// "bootstrap" only ("" for any).
	CreatedBy string
	// Deleted lists deleted keys only, instead of the keys not deleted.
	Deleted bool
	// Cursor starts after the page that returned it as NextCursor ("" for
	// the first page).
	Cursor string
}

func (o ListAPIKeysOptions) params(accountID string) *oapi.ListAPIKeysParams {
	p := &oapi.ListAPIKeysParams{AccountID: accountID, Managed: o.Managed}
	if o.Limit != 0 {
		p.Limit = Ptr(o.Limit)
	}
	if o.Status != "" {
		p.Status = Ptr(oapi.ListAPIKeysParamsStatus(o.Status))
	}
	if o.Type != "" {
		p.Type = Ptr(oapi.ListAPIKeysParamsType(o.Type))
	}
	if o.CreatedBy != "" {
		p.CreatedBy = Ptr(o.CreatedBy)
	}
	if o.Deleted {
		p.Deleted = Ptr(true)
	}
	if o.Cursor != "" {
		p.Cursor = Ptr(o.Cursor)
	}
	return p
}

// ListAPIKeysPage returns one page of the account's keys in the
// credential's mode, oldest first (from opts.Cursor); NextCursor fetches the
// next while HasMore. Keys carry KeyHint, never the secret. Requires
// account:api:key:read; another account's keys are ErrForbidden
// (CodeAccountForbidden).
func (c *Client) ListAPIKeysPage(ctx context.Context, accountID string, opts ListAPIKeysOptions) (*APIKeyPage, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := checkPage(accountID, "ListAPIKeysOptions.Limit", opts.Limit); err != nil {
		return nil, err
	}
	res, err := c.raw.ListAPIKeys(ctx, opts.params(accountID)) //nolint:bodyclose // result (or its caller) reads and closes the body
	return result[APIKeyPage](c, res, err)
}

// ListAPIKeys iterates over all the account's keys that match opts, oldest
// first, fetching page after page (each a GET, retried when safe). The order
// is stable, so no key is skipped or repeated, even when keys are created
// meanwhile. On the first error it yields that error (with a zero key) and
// stops; breaking out of the loop stops fetching.
//
//	for key, err := range c.ListAPIKeys(ctx, "acct_123", client.ListAPIKeysOptions{}) {
//		if err != nil {
//			return err
//		}
//		…
//	}
func (c *Client) ListAPIKeys(ctx context.Context, accountID string, opts ListAPIKeysOptions) iter.Seq2[APIKeyView, error] {
	return paginate(opts.Cursor, func(cursor string) ([]APIKeyView, bool, *string, error) {
		o := opts
		o.Cursor = cursor
		page, err := c.ListAPIKeysPage(ctx, accountID, o)
		if err != nil {
			return nil, false, nil, err
		}
		return page.Data, page.HasMore, page.NextCursor, nil
	})
}

// ListAuditEventsOptions selects and pages the events ListAuditEvents returns;
// the zero value lists all of them.
type ListAuditEventsOptions struct {
	// KeyID keeps the events about this key only ("" for any).
	KeyID string
	// Action keeps the events of this action only ("" for any).
	Action AuditAction
	// Limit is the page size, 1 to 100; 0 leaves it to the server (20).
	// Any other value is an *ArgumentError, before any request.
	Limit int
	// Cursor starts after the page that returned it as NextCursor ("" for
	// the first page).
	Cursor string
}

func (o ListAuditEventsOptions) params(accountID string) *oapi.ListAuditEventsParams {
	p := &oapi.ListAuditEventsParams{AccountID: accountID}
	if o.KeyID != "" {
		p.KeyID = Ptr(o.KeyID)
	}
	if o.Action != "" {
		p.Action = Ptr(oapi.AuditAction(o.Action))
	}
	if o.Limit != 0 {
		p.Limit = Ptr(o.Limit)
	}
	if o.Cursor != "" {
		p.Cursor = Ptr(o.Cursor)
	}
	return p
}

// ListAuditEventsPage returns one page of the account's audit events in the
// credential's mode, newest first. Requires account:audit:read.
func (c *Client) ListAuditEventsPage(ctx context.Context, accountID string, opts ListAuditEventsOptions) (*AuditEventPage, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := checkPage(accountID, "ListAuditEventsOptions.Limit", opts.Limit); err != nil {
		return nil, err
	}
	res, err := c.raw.ListAuditEvents(ctx, opts.params(accountID)) //nolint:bodyclose // result (or its caller) reads and closes the body
	return result[AuditEventPage](c, res, err)
}

// ListAuditEvents iterates over the account's audit events that match opts,
// newest first, page after page; like ListAPIKeys it yields the first error
// and stops. Pass every event (no KeyID or Action) to VerifyAuditChain to
// check the chain.
func (c *Client) ListAuditEvents(ctx context.Context, accountID string, opts ListAuditEventsOptions) iter.Seq2[AuditEvent, error] {
	return paginate(opts.Cursor, func(cursor string) ([]AuditEvent, bool, *string, error) {
		o := opts
		o.Cursor = cursor
		page, err := c.ListAuditEventsPage(ctx, accountID, o)
		if err != nil {
			return nil, false, nil, err
		}
		return page.Data, page.HasMore, page.NextCursor, nil
	})
}

// MaxPageSize is the largest Limit the list operations accept.
const MaxPageSize = 100

// checkPage refuses, before any request, an empty account id and a page size
// the API would refuse.
func checkPage(accountID, limitName string, limit int) error {
	if err := requireID("accountID", accountID); err != nil {
		return err
	}
	if limit < 0 || limit > MaxPageSize {
		return &ArgumentError{Name: limitName, Value: limit, Reason: "want 1 to 100, or 0 for the server's default (20)"}
	}
	return nil
}

// paginate walks pages from cursor until one has no successor.
func paginate[T any](cursor string, fetch func(cursor string) ([]T, bool, *string, error)) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		seen := map[string]bool{}
		for {
			items, hasMore, next, err := fetch(cursor)
			if err != nil {
				yield(zero, err)
				return
			}
			for _, it := range items {
				if !yield(it, nil) {
					return
				}
			}
			if !hasMore {
				return
			}
			switch {
			case next == nil || *next == "":
				yield(zero, fmt.Errorf("%w: has_more is true but next_cursor is empty", ErrBadPage))
				return
			case seen[*next] || *next == cursor:
				yield(zero, fmt.Errorf("%w: next_cursor %q was already followed", ErrBadPage, *next))
				return
			}
			seen[*next] = true
			cursor = *next
		}
	}
}

// Collect gathers what an iterator such as ListAPIKeys yields into a slice,
// stopping at the first error (returned with the items before it).
func Collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for v, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, v)
	}
	return out, nil
}
