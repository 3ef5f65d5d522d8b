package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

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
	_, deferred := t.deferred[e.AccountID]
	if _, ok := t.heads[e.AccountID]; !ok && !deferred {
		if _, queued := t.locking[e.AccountID]; !queued {
			// An account the unit did not lock: lock it now (ErrNoAccount
			// if none), or queue its lock.
			if err := t.LockAccount(ctx, e.AccountID); err != nil {
				return err
			}
		}
	}
	h, known := t.heads[e.AccountID]
	_, deferred = t.deferred[e.AccountID]
	if _, queued := t.locking[e.AccountID]; queued || deferred || !known || t.serverSealed[e.AccountID] > 0 {
		return t.appendSealed(ctx, e, changes)
	}
	if err := e.SealEncoded(h.seq, h.hash, changes); err != nil {
		return err
	}
	// Queued: it has no answer (the head it becomes is computed here), and
	// what can fail it is the unit's failure, not one a caller handles; so it
	// travels with the unit's next statement or its COMMIT, one round trip
	// fewer while the account's row is locked. json.RawMessage goes to jsonb
	// as the JSON text it is.
	err = t.queue(ctx, t.q.appendEvent,
		e.AccountID, e.Seq, e.ID, string(e.Mode), e.Action, e.KeyID, e.Actor.Kind, e.Actor.ID, e.Actor.RequestID,
		e.ClientIP, e.CreatedAt, json.RawMessage(changes), e.PrevHash, e.Hash)
	if err != nil {
		return err
	}
	t.setHead(e.AccountID, auditHead{e.Seq, e.Hash})
	return nil
}

// appendSealed queues e's insert for an account whose head this unit does
// not know yet (its lock is queued, or events before e are): the statement
// seals e where it reads the head (SealParts), so that the lock, the key's
// write, the event and COMMIT can go in one round trip. e's Seq, PrevHash
// and Hash are set when it is read back: before InTx returns, or the
// unit's next statement.
func (t *tx) appendSealed(ctx context.Context, e *audit.Event, changes []byte) error {
	prefix, middle, err := e.SealParts(changes)
	if err != nil {
		return err
	}
	account := e.AccountID
	// The account's deferred lock, if any, is taken here (see LockAccount).
	var limit any
	if d, ok := t.deferred[account]; ok {
		limit = d.limit
		delete(t.deferred, account)
	}
	q := queued{sql: t.q.appendSealed, args: []any{
		account, e.ID, string(e.Mode), e.Action, e.KeyID, e.Actor.Kind, e.Actor.ID, e.Actor.RequestID,
		e.ClientIP, e.CreatedAt, json.RawMessage(changes), prefix, middle, limit}, fail: lockFailed}
	q.read = func(br pgx.BatchResults) error {
		var seq int64
		var prev, hash string
		err := br.QueryRow().Scan(&seq, &prev, &hash)
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNoAccount // 1/count(*) fails first: not reached
		}
		if err != nil {
			return err
		}
		e.Seq, e.PrevHash, e.Hash = seq, prev, hash
		t.serverSealed[account]--
		t.setHead(account, auditHead{seq, hash})
		return nil
	}
	if err := t.queueRead(ctx, q); err != nil {
		return err
	}
	if t.serverSealed == nil {
		t.serverSealed = map[string]int{}
	}
	t.serverSealed[account]++
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
	return r.events(ctx, true, q, a...)
}

func (r *Repo) AuditChain(ctx context.Context, accountID string) (_ []audit.Event, err error) {
	defer classify(&err)
	return r.events(ctx, false, r.q.auditChain, accountID)
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

// events reads the events q selects. A page (ListAuditEvents) gets the
// changes as ChangesJSON (see auditrow.AppendCanonical), all of them in one
// string; the chain (AuditChain) as the Changes maps.
func (r *Repo) events(ctx context.Context, page bool, q string, args ...any) ([]audit.Event, error) {
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []audit.Event{}
	var changesJSON *auditrow.Joined
	if page {
		changesJSON = auditrow.NewJoined()
		defer changesJSON.Free()
	}
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
		if page {
			err = changesJSON.Add(changes)
		} else {
			e.Changes, err = auditrow.DecodeString(changes)
		}
		if err != nil {
			return nil, fmt.Errorf("postgres: audit event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if page {
		changesJSON.Fill(out)
	}
	return out, nil
}
