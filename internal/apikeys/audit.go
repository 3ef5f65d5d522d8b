package apikeys

import (
	"context"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

// AuditInput selects a page of audit events.
type AuditInput struct {
	KeyID, Action string
	Cursor        string
	Limit         int
}

// ListAuditEvents returns a page of an account's audit events in the
// caller's mode, newest first.
func (s *Service) ListAuditEvents(ctx context.Context, p *auth.Principal, accountID string, in AuditInput) (*Page[audit.Event], error) {
	if e := policy.Authorize(p, policy.ReadAudit, policy.Target{AccountID: accountID}); e != nil {
		return nil, e
	}
	f := store.AuditFilter{AccountID: accountID, KeyID: in.KeyID, Action: in.Action, Limit: pageSize(in.Limit) + 1}
	if in.Cursor != "" {
		seq, e := decodeAuditCursor(in.Cursor)
		if e != nil {
			return nil, e
		}
		f.Before = seq
	}
	repo := s.store.Repo(p.Mode)
	// The page first: an account's events go with it (DeleteAccount, in one
	// unit), so a page that holds any is an account that exists, and only an
	// empty page asks whether it does (ACCOUNT_NOT_FOUND): one read fewer
	// for every page with events, a round trip on PostgreSQL.
	events, err := repo.ListAuditEvents(ctx, f)
	if err != nil {
		return nil, apierr.Internal(err)
	}
	if len(events) == 0 {
		if e := s.accountExists(ctx, repo, accountID); e != nil {
			return nil, e
		}
	}
	page := &Page[audit.Event]{Items: events}
	if len(events) > pageSize(in.Limit) {
		page.Items = events[:pageSize(in.Limit)]
		page.NextCursor = encodeAuditCursor(page.Items[len(page.Items)-1].Seq)
	}
	return page, nil
}

// VerifyAudit checks every account's chain in every mode and returns the
// first broken link (an *audit.BrokenLink), or nil; n counts events checked.
func VerifyAudit(ctx context.Context, st store.Store) (n int, err error) {
	for _, mode := range apikey.Modes {
		repo := st.Repo(mode)
		heads, err := repo.AuditAccounts(ctx)
		if err != nil {
			return n, err
		}
		for _, h := range heads {
			events, err := repo.AuditChain(ctx, h.AccountID)
			if err != nil {
				return n, err
			}
			n += len(events)
			if err := audit.Verify(h.AccountID, mode, events, h.Seq, h.Hash); err != nil {
				return n, err
			}
		}
	}
	return n, nil
}
