package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/auditrow"
)

const eventColumns = `account_id, seq, id, mode, action, key_id, actor_kind, actor_id, request_id,
	client_ip, created_at, changes, prev_hash, hash`

// AppendAuditEvent seals e after the chain's head (as LockAccount read it,
// or read now) and moves the head to e. Units run one at a time inside the
// writer's transaction, so no other append can come between the read and the
// write.
func (t *tx) AppendAuditEvent(ctx context.Context, e *audit.Event) error {
	changes, err := auditrow.Prepare(e, t.w.mode)
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	if t.headAccount != e.AccountID {
		if err := t.LockAccount(ctx, e.AccountID); err != nil {
			return err
		}
	}
	if err := e.SealEncoded(t.head.seq, t.head.hash, changes); err != nil {
		return err
	}
	err = t.exec(ctx, t.w.st.insertEvent,
		e.AccountID, e.Seq, e.ID, string(e.Mode), e.Action, e.KeyID, e.Actor.Kind, e.Actor.ID, e.Actor.RequestID,
		e.ClientIP, fmtTime(e.CreatedAt), string(changes), e.PrevHash, e.Hash)
	if err != nil {
		if isUnique(err) {
			return fmt.Errorf("sqlite: audit event %s (seq %d): %w", e.ID, e.Seq, err)
		}
		return mapInsertErr(err)
	}
	if err := t.exec(ctx, t.w.st.setAuditHead, e.Seq, e.Hash, e.AccountID); err != nil {
		t.touch(e.AccountID)
		t.headAccount = "" // read it again, if the unit goes on
		return err
	}
	t.head = auditHead{e.Seq, e.Hash}
	return nil
}

// ListAuditEvents pages newest first; the primary key (account_id, seq) or
// the key_id/action indexes serve it. Each combination of filters is a
// statement of its own, prepared once (listEventsSQL).
func (r *Repo) ListAuditEvents(ctx context.Context, f store.AuditFilter) (_ []audit.Event, err error) {
	defer classify(&err)
	if f.Limit <= 0 {
		return nil, fmt.Errorf("sqlite: list audit events: limit %d, want at least 1", f.Limit)
	}
	var (
		shape int
		args  [5]any // numbered as in listEventsSQL; unused ones are NULL
	)
	args[0], args[4] = f.AccountID, f.Limit
	if f.Before > 0 {
		shape |= eventsBefore
		args[1] = f.Before
	}
	if f.KeyID != "" {
		shape |= eventsKey
		args[2] = f.KeyID
	}
	if f.Action != "" {
		shape |= eventsAction
		args[3] = f.Action
	}
	st, err := r.listEvents.stmt(ctx, shape) //nolint:sqlclosecheck // shapes keeps it
	if err != nil {
		return nil, err
	}
	var page sql.NullString // NULL: no event
	if err := st.QueryRowContext(ctx, args[:]...).Scan(&page); err != nil {
		return nil, err
	}
	size := min(f.Limit, 1001)
	if !page.Valid {
		return make([]audit.Event, 0, size), nil
	}
	events, ok, err := splitJoinedPage(page.String, size)
	if ok || err != nil {
		return events, err
	}
	// A row with a NUL or a \x01 in a field: read the page again column by
	// column.
	if st, err = r.listEvents.stmt(ctx, shape|eventsByColumn); err != nil { //nolint:sqlclosecheck // shapes keeps it
		return nil, err
	}
	rows, err := st.QueryContext(ctx, args[:]...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows, size, true)
}

// The shapes of ListAuditEvents: a bit per filter, and one for the
// statement that reads the columns one by one.
const (
	eventsBefore = 1 << iota
	eventsKey
	eventsAction
	eventsByColumn
	eventShapes
)

// listEventsSQL is the text of a ListAuditEvents shape. Parameters: ?1
// account, ?2 the cursor's seq, ?3 key, ?4 action, ?5 the limit.
//
// A page is read as one text (splitJoinedPage): each event's columns joined
// by NULs, the events joined by \x01s, newest first. Read row by row, each
// of a page's ~100 rows cost a step through database/sql and the driver
// (a lock, the context's watch, a copy of the row's text into a string of
// its own and its boxing, the scan): ~70 µs of a page's ~240 µs. One row
// that SQLite aggregates is one of each (and one string for the page,
// which the events' strings are cut from). Columns are joined rather than
// read one by one for the same reason, ~0.1 µs and two allocations a
// column, 14 columns an event. The order of an aggregate's input is not
// one SQLite promises (group_concat's own ORDER BY sorts again, at twice
// the cost): the page's order is checked as it is split, seq strictly
// decreasing, and the rows read one by one otherwise. The eventsByColumn
// shape reads the columns as they are, row by row: for a page whose texts
// hold a NUL or a \x01 themselves, or that did not come in order. SQLite
// bounds a text at 1e9 bytes: a page of 101 events (the largest page, 100,
// and one more) of changes from bodies of at most 64 KiB, even escaped six
// times over, stays far below.
func listEventsSQL(shape int) string {
	q := `SELECT concat_ws(char(0), ` + eventColumns + `) AS event FROM audit_events WHERE account_id = ?1`
	if shape&eventsByColumn != 0 {
		q = `SELECT ` + eventColumns + ` FROM audit_events WHERE account_id = ?1`
	}
	if shape&eventsBefore != 0 {
		q += ` AND seq < ?2`
	}
	if shape&eventsKey != 0 {
		q += ` AND key_id = ?3`
	}
	if shape&eventsAction != 0 {
		q += ` AND action = ?4`
	}
	q += ` ORDER BY seq DESC LIMIT ?5`
	if shape&eventsByColumn != 0 {
		return q
	}
	return `SELECT group_concat(event, char(1)) FROM (` + q + `)`
}

// eventFields is how many columns eventColumns names.
const eventFields = 14

// splitJoinedPage reads the events of a page read as one text (see
// listEventsSQL; one event at least); the events' strings are cut from it.
// false (and no error) when the page is to be read column by column: a row
// does not split into eventFields fields (a text of the row holds a NUL or
// a \x01: then some part between \x01s has too few or too many NULs), its
// seq is not an integer's text, or the seqs do not decrease from row to row.
func splitJoinedPage(page string, size int) ([]audit.Event, bool, error) {
	out := make([]audit.Event, 0, size)
	for {
		// A \x01 that ends the page is a text's too: its empty row after it
		// does not split.
		row, rest, more := strings.Cut(page, "\x01")
		var e audit.Event
		ok, err := joinedEvent(&e, row)
		if !ok || err != nil {
			return nil, false, err
		}
		if n := len(out); n > 0 && out[n-1].Seq <= e.Seq {
			return nil, false, nil
		}
		out = append(out, e)
		if !more {
			return out, true, nil
		}
		page = rest
	}
}

// joinedEvent reads the event of row, eventColumns joined by NULs, into e:
// false (and no error) when the row is to be read column by column (see
// splitJoinedPage).
func joinedEvent(e *audit.Event, row string) (bool, error) {
	var buf [eventFields]string
	fields := buf[:0]
	for len(fields) < eventFields-1 {
		f, rest, found := strings.Cut(row, "\x00")
		if !found {
			return false, nil
		}
		fields, row = append(fields, f), rest
	}
	if strings.IndexByte(row, 0) >= 0 {
		return false, nil
	}
	fields = append(fields, row)
	*e = audit.Event{
		AccountID: fields[0], ID: fields[2], Mode: apikey.Mode(fields[3]), Action: fields[4], KeyID: fields[5],
		Actor:    apikey.Actor{Kind: fields[6], ID: fields[7], RequestID: fields[8]},
		ClientIP: fields[9], PrevHash: fields[12], Hash: fields[13],
	}
	var err error
	if e.Seq, err = strconv.ParseInt(fields[1], 10, 64); err != nil {
		return false, nil //nolint:nilerr // not an integer's text: false sends the page to the column-by-column read, whose Scan decides what it is
	}
	if e.CreatedAt, err = parseTime(fields[10]); err != nil {
		return false, fmt.Errorf("sqlite: audit event %s created_at: %w", e.ID, err)
	}
	if e.ChangesJSON, err = auditrow.Canonical(fields[11]); err != nil {
		return false, fmt.Errorf("sqlite: audit event %s: %w", e.ID, err)
	}
	return true, nil
}

func (r *Repo) AuditChain(ctx context.Context, accountID string) (_ []audit.Event, err error) {
	defer classify(&err)
	return r.events(ctx, `SELECT `+eventColumns+` FROM audit_events WHERE account_id = ? ORDER BY seq`, accountID)
}

func (r *Repo) AuditAccounts(ctx context.Context) (_ []store.AuditHead, err error) {
	defer classify(&err)
	rows, err := r.rdb.QueryContext(ctx, `SELECT id, audit_seq, audit_head FROM accounts ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
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
	rows, err := r.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return scanEvents(rows, 0, false)
}

// scanEvents reads the events of rows (eventColumns) and closes it; size is
// how many are expected, at most. A page (ListAuditEvents) gets the changes
// as ChangesJSON (auditrow.Canonical), the chain (AuditChain) as the
// Changes maps.
func scanEvents(rows *sql.Rows, size int, page bool) ([]audit.Event, error) {
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	out := make([]audit.Event, 0, size)
	for rows.Next() {
		var (
			e                 audit.Event
			mode, at, changes string
		)
		err := rows.Scan(&e.AccountID, &e.Seq, &e.ID, &mode, &e.Action, &e.KeyID, &e.Actor.Kind, &e.Actor.ID,
			&e.Actor.RequestID, &e.ClientIP, &at, &changes, &e.PrevHash, &e.Hash)
		if err != nil {
			return nil, err
		}
		e.Mode = apikey.Mode(mode)
		if e.CreatedAt, err = parseTime(at); err != nil {
			return nil, fmt.Errorf("sqlite: audit event %s created_at: %w", e.ID, err)
		}
		if page {
			e.ChangesJSON, err = auditrow.Canonical(changes)
		} else {
			e.Changes, err = auditrow.DecodeString(changes)
		}
		if err != nil {
			return nil, fmt.Errorf("sqlite: audit event %s: %w", e.ID, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}
