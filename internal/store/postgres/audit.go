package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/auditrow"
)

// AppendAuditEvent seals e after the chain's head (as LockAccount read it,
// or read and locked now) and stores it with the new head, all in the unit's
// transaction.
func (t *tx) AppendAuditEvent(ctx context.Context, e *audit.Event) error {
	changes, err := auditrow.Prepare(e, t.mode)
	if err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	h, ok := t.heads[e.AccountID]
	if !ok { // an account the unit did not lock: lock it now (ErrNoAccount if none)
		if err := t.LockAccount(ctx, e.AccountID); err != nil {
			return err
		}
		h = t.heads[e.AccountID]
	}
	if err := e.SealEncoded(h.seq, h.hash, changes); err != nil {
		return err
	}
	// json.RawMessage goes to jsonb as the JSON text it is.
	err = t.exec(ctx, t.q.appendEvent,
		e.AccountID, e.Seq, e.ID, string(e.Mode), e.Action, e.KeyID, e.Actor.Kind, e.Actor.ID, e.Actor.RequestID,
		e.ClientIP, e.CreatedAt, json.RawMessage(changes), e.PrevHash, e.Hash)
	if err != nil {
		return mapErr(err)
	}
	t.setHead(e.AccountID, auditHead{e.Seq, e.Hash})
	return nil
}

// ListAuditEvents pages newest first; the primary key (account_id, seq) or
// the key_id/action indexes serve it.
func (r *Repo) ListAuditEvents(ctx context.Context, f store.AuditFilter) (_ []audit.Event, err error) {
	defer classify(&err)
	if f.Limit <= 0 {
		return nil, fmt.Errorf("postgres: list audit events: limit %d, want at least 1", f.Limit)
	}
	a := args{f.AccountID}
	q := r.q.listEvents
	if f.Before > 0 {
		q += ` AND seq < ` + a.add(f.Before)
	}
	if f.KeyID != "" {
		q += ` AND key_id = ` + a.add(f.KeyID)
	}
	if f.Action != "" {
		q += ` AND action = ` + a.add(f.Action)
	}
	q += ` ORDER BY seq DESC LIMIT ` + a.add(f.Limit)
	return r.events(ctx, q, a...)
}

func (r *Repo) AuditChain(ctx context.Context, accountID string) (_ []audit.Event, err error) {
	defer classify(&err)
	return r.events(ctx, r.q.auditChain, accountID)
}

func (r *Repo) AuditAccounts(ctx context.Context) (_ []store.AuditHead, err error) {
	defer classify(&err)
	rows, err := r.pool.Query(ctx, r.q.auditAccounts)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.AuditHead{}
	for rows.Next() {
		var h store.AuditHead
		if err := rows.Scan(&h.AccountID, &h.Seq, &h.Hash); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (r *Repo) events(ctx context.Context, q string, args ...any) ([]audit.Event, error) {
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []audit.Event{}
	for rows.Next() {
		var (
			e             audit.Event
			mode, changes string
		)
		err := rows.Scan(&e.AccountID, &e.Seq, &e.ID, &mode, &e.Action, &e.KeyID, &e.Actor.Kind, &e.Actor.ID,
			&e.Actor.RequestID, &e.ClientIP, &e.CreatedAt, &changes, &e.PrevHash, &e.Hash)
		if err != nil {
			return nil, err
		}
		e.Mode = apikey.Mode(mode)
		e.CreatedAt = e.CreatedAt.UTC()
		if e.Changes, err = auditrow.DecodeString(changes); err != nil {
			return nil, fmt.Errorf("postgres: audit event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}
