package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

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
// changes as ChangesJSON (auditrow.Canonical), the chain (AuditChain) as
// the Changes maps.
func (r *Repo) events(ctx context.Context, page bool, q string, args ...any) ([]audit.Event, error) {
	rows, err := r.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	if page && rawEventColumns(rows.FieldDescriptions()) {
		return scanRawEvents(rows)
	}
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
		if page {
			e.ChangesJSON, err = auditrow.Canonical(changes)
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
	return out, nil
}

// eventFields is how many columns eventSelect names.
const eventFields = 14

// rawEventColumns reports whether a page's columns come as scanRawEvents
// reads them: texts (in either format, the text's bytes), seq as a binary
// int8 and created_at as a binary timestamptz.
func rawEventColumns(fds []pgconn.FieldDescription) bool {
	if len(fds) != eventFields {
		return false
	}
	for i, fd := range fds {
		switch i {
		case 1:
			if fd.DataTypeOID != pgtype.Int8OID || fd.Format != pgx.BinaryFormatCode {
				return false
			}
		case 10:
			if fd.DataTypeOID != pgtype.TimestamptzOID || fd.Format != pgx.BinaryFormatCode {
				return false
			}
		default:
			if fd.DataTypeOID != pgtype.TextOID {
				return false
			}
		}
	}
	return true
}

// pgEpoch is where PostgreSQL's binary timestamps count from, in
// microseconds since the Unix epoch.
const pgEpoch = 946_684_800 * 1_000_000

// rawRow is where an event's texts end in a rawPage's buffer, and its
// numbers.
type rawRow struct {
	seq  int64
	at   int64 // microseconds since pgEpoch
	ends [eventFields]int
}

// rawPage is scanRawEvents' rows, reused from page to page, and how long
// the last page's texts were.
type rawPage struct {
	rows []rawRow
	size int
}

var rawPages = sync.Pool{New: func() any { return &rawPage{size: 64 << 10} }}

// scanRawEvents reads a page from the rows' raw values (rawEventColumns):
// pgx's Scan decodes and allocates each of an event's 14 columns on its own,
// while here the page's texts are gathered in one string, which the events'
// strings are cut from. They are written straight into that string's bytes
// (a strings.Builder grown to the last page's length: most pages are the
// same size), not into a buffer that a string then copies (~70 KB a page of
// 100, ~5% of the request's CPU under load). It closes rows.
func scanRawEvents(rows pgx.Rows) ([]audit.Event, error) {
	defer rows.Close()
	sp := rawPages.Get().(*rawPage) //nolint:forcetypeassert // the pool holds only these
	defer func() {
		if cap(sp.rows) <= 1024 { // a larger page's rows are let go
			rawPages.Put(sp)
		}
	}()
	var buf strings.Builder
	buf.Grow(min(sp.size, 1<<20))
	read := sp.rows[:0]
	defer func() { sp.rows, sp.size = read, buf.Len() }()
	for rows.Next() {
		vals := rows.RawValues()
		if len(vals) != eventFields {
			return nil, fmt.Errorf("postgres: audit event: %d columns, want %d", len(vals), eventFields)
		}
		var re rawRow
		for i, v := range vals {
			if v == nil {
				return nil, fmt.Errorf("postgres: audit event: column %d is NULL", i)
			}
			switch i {
			case 1, 10:
				if len(v) != 8 {
					return nil, fmt.Errorf("postgres: audit event: column %d of %d bytes, want 8", i, len(v))
				}
				n := int64(binary.BigEndian.Uint64(v)) //nolint:gosec // two's complement, as PostgreSQL sends both
				if i == 1 {
					re.seq = n
				} else {
					re.at = n
				}
			default:
				buf.Write(v)
			}
			re.ends[i] = buf.Len()
		}
		read = append(read, re)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	all := buf.String()
	out := make([]audit.Event, len(read))
	start := 0
	var texts [eventFields]string
	for i := range read {
		re := &read[i]
		f := texts[:0]
		for _, end := range re.ends {
			f = append(f, all[start:end])
			start = end
		}
		e := &out[i]
		*e = audit.Event{
			AccountID: f[0], Seq: re.seq, ID: f[2], Mode: apikey.Mode(f[3]), Action: f[4], KeyID: f[5],
			Actor:    apikey.Actor{Kind: f[6], ID: f[7], RequestID: f[8]},
			ClientIP: f[9], PrevHash: f[12], Hash: f[13],
		}
		if re.at == math.MaxInt64 || re.at == math.MinInt64 {
			return nil, fmt.Errorf("postgres: audit event %s: created_at is infinite", e.ID)
		}
		e.CreatedAt = time.UnixMicro(re.at + pgEpoch).UTC()
		var err error
		if e.ChangesJSON, err = auditrow.Canonical(f[11]); err != nil {
			return nil, fmt.Errorf("postgres: audit event %s: %w", e.ID, err)
		}
	}
	return out, nil
}
