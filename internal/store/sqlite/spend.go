package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/hsrcpay/apikeys/internal/store"
)

// SpendCredits is a unit of the writer's batch that reads the key's credit
// columns, decides with apikey.Credits.Spend (PostgreSQL's rule, the same
// code) and writes what it decided. Exact without a lock of its own: the
// writer is the database's only writer and runs its units one at a time,
// so nothing changes the row between the read and the write, and each
// spend sees every one before it in its batch. The columns are read from
// the row, never from the key cache (its copy of a key's credits is not
// the row's once the batch writes them); the key is dropped from the cache
// when the spend writes. Answered, as every unit, only once its batch has
// committed.
func (r *Repo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (remaining int64, ok bool, err error) {
	defer classify(&err)
	err = r.InTx(ctx, func(stx store.Tx) error {
		t := stx.(*tx) // InTx hands its fn this package's tx, always
		ok = false
		var cr store.CreditColumns
		err := t.row(ctx, t.w.st.readCredits, id).Scan(&cr.Remaining, &cr.RefillAmount, &cr.RefillInterval, &cr.RefillDay, &cr.RefilledAt)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		c, err := cr.Decode()
		if err != nil {
			return fmt.Errorf("sqlite: key %s: %w", id, err)
		}
		if c == nil {
			return store.ErrNoCredits
		}
		after, spent := c.Spend(cost, now)
		remaining = after.Remaining
		if !spent {
			return nil // nothing written: a due refill is applied when read
		}
		next := store.EncodeCredits(after)
		// A check (cost 0) with no refill due changes nothing: no write,
		// and the key stays cached.
		if *next.Remaining != *cr.Remaining || next.RefilledAt != cr.RefilledAt {
			t.w.keys.wrote(id) // before the statement: even a failed one may have changed the row
			if err := t.exec(ctx, t.w.st.setCredits, *next.Remaining, next.RefilledAt, id); err != nil {
				return err
			}
		}
		ok = true
		return nil
	})
	return remaining, ok, err
}
