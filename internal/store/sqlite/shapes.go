package sqlite

import (
	"context"
	"database/sql"
	"sync"
	"sync/atomic"
)

// shapes holds the prepared statements of a query whose text depends on
// which filters a call uses (ListKeys, ListAuditEvents): one statement per
// combination, numbered 0..n-1, prepared on the read pool the first time it
// is asked for and kept until the pool closes. Compiling the text on every
// call cost the key list ~20% of its CPU; a statement with every filter made
// optional ("? IS NULL OR col = ?") would be one statement but would lose the
// index's range on the cursor, so each combination keeps its own text.
type shapes struct {
	db   *sql.DB
	text func(shape int) string
	mu   sync.Mutex // held while preparing, so that a statement is prepared once
	st   []atomic.Pointer[sql.Stmt]
}

func newShapes(db *sql.DB, n int, text func(shape int) string) *shapes {
	return &shapes{db: db, text: text, st: make([]atomic.Pointer[sql.Stmt], n)}
}

// stmt is shape's statement. database/sql prepares it again on each reader
// connection it meets, once per connection.
func (s *shapes) stmt(ctx context.Context, shape int) (*sql.Stmt, error) {
	if st := s.st[shape].Load(); st != nil {
		return st, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if st := s.st[shape].Load(); st != nil {
		return st, nil
	}
	st, err := s.db.PrepareContext(ctx, s.text(shape)) //nolint:sqlclosecheck // kept until the pool closes, which closes its statements
	if err != nil {
		return nil, err
	}
	s.st[shape].Store(st)
	return st, nil
}
