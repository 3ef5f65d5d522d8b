// Package namerow fills api_keys.name_key for rows that have none: every row
// once, after migration 00009 added the column (SQL cannot compute the
// skeleton), and rows an older binary inserted since. Both stores run it
// when they open, under their migration lock.
package namerow

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/hsrcpay/apikeys/internal/namekey"
)

// Collided separates a name key from the id that follows it in the key of a
// live row whose name already collided, before 00009, with an older live
// row's of the same account: the migration must not fail, and the older key
// keeps the plain key, which every new name is checked against. A clean name's
// key never holds a newline (CleanName refuses control characters).
const Collided = "\n"

// SQL is one dialect's statements: Missing lists (id, account_id, name,
// live) of rows with a NULL name_key in (created_at, id) order; Taken counts
// live rows of account $1 holding key $2; Set gives row $2 key $1.
type SQL struct{ Missing, Taken, Set string }

// Fill computes the missing keys in one transaction on db and returns how
// many rows it filled.
func Fill(ctx context.Context, db *sql.DB, q SQL) (n int, err error) {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback() // err is the one to report
		}
	}()
	rows, err := missingRows(ctx, tx, q.Missing)
	if err != nil {
		return 0, err
	}
	for _, r := range rows {
		k := namekey.Key(r.name)
		if r.live {
			var taken int
			if err := tx.QueryRowContext(ctx, q.Taken, r.account, k).Scan(&taken); err != nil {
				return 0, err
			}
			if taken > 0 {
				k += Collided + r.id
			}
		}
		if _, err := tx.ExecContext(ctx, q.Set, k, r.id); err != nil {
			return 0, fmt.Errorf("name key of %s: %w", r.id, err)
		}
	}
	return len(rows), tx.Commit()
}

// row is a key whose name key is missing.
type row struct {
	id, account, name string
	live              bool
}

// missingRows reads the keys query selects (all of them before the caller
// writes anything: one statement's rows at a time on a transaction).
func missingRows(ctx context.Context, tx *sql.Tx, query string) ([]row, error) {
	rs, err := tx.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rs.Close() }() // an error of the scan or of Err is the one to report
	var rows []row
	for rs.Next() {
		var r row
		if err := rs.Scan(&r.id, &r.account, &r.name, &r.live); err != nil {
			return nil, err
		}
		rows = append(rows, r)
	}
	return rows, rs.Err()
}
