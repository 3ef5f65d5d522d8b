package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/store"
)

// spendGroups coalesces this replica's concurrent spends of one key's
// credits into one transaction. A key verified by many clients at once is
// one row every spend must lock: spent one statement each, they queued on
// that row and on PostgreSQL's per-statement work (verify_credits ran at
// 0.15× the baseline). Instead the first spend of a key leads: it locks the
// row once for every spend that arrived meanwhile, decides them in order
// in Go exactly as the single statement did (a due refill first, then each
// spend only while enough is left), writes the result once and commits,
// and hands the lead to the first spend that arrived while it ran. Spends
// stay exact across replicas: each batch holds the row's lock from its read
// to its commit, so two replicas' batches on one key run one after the other.
type spendGroups struct {
	mu     sync.Mutex
	groups map[string]*spendGroup // by key id, while a spend of it runs
}

type spendGroup struct{ waiting []*spendReq }

type spendReq struct {
	cost int64
	now  time.Time
	// Set by the batch that takes it (or, lead, by the spend handing over),
	// then done is closed.
	lead      bool
	remaining int64
	ok        bool
	err       error
	done      chan struct{}
}

// SpendCredits spends cost of the key's credits at now, with whatever
// other spends of the key this replica has in flight (spendGroups).
func (r *Repo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (int64, bool, error) {
	req := &spendReq{cost: cost, now: now, done: make(chan struct{})}
	g := &r.spends
	g.mu.Lock()
	if g.groups == nil {
		g.groups = map[string]*spendGroup{}
	}
	grp := g.groups[id]
	// leading is read here, under the lock: req.lead may be set by the spend
	// that hands the lead over as soon as req is in waiting (read again only
	// after done is closed).
	leading := grp == nil
	if leading {
		grp = &spendGroup{}
		g.groups[id] = grp
	} else {
		grp.waiting = append(grp.waiting, req)
	}
	g.mu.Unlock()
	if !leading {
		select {
		case <-req.done:
		case <-ctx.Done():
			g.mu.Lock()
			for i, w := range grp.waiting {
				if w == req { // not taken by a batch: nothing was spent
					grp.waiting = append(grp.waiting[:i], grp.waiting[i+1:]...)
					g.mu.Unlock()
					return 0, false, unavailable(ctx.Err())
				}
			}
			g.mu.Unlock()
			<-req.done // taken: its batch's outcome, within that batch's timeout
		}
		if !req.lead {
			return req.remaining, req.ok, req.err
		}
	}
	if err := ctx.Err(); err != nil {
		// The lead with its own time up: a batch on this context would fail
		// every spend in it. It spends nothing and passes the lead on.
		g.handOver(id, grp)
		return 0, false, unavailable(err)
	}
	// Lead one batch: this spend and every one waiting.
	g.mu.Lock()
	batch := append([]*spendReq{req}, grp.waiting...)
	grp.waiting = nil
	g.mu.Unlock()
	err := r.spendBatch(ctx, id, batch)
	g.handOver(id, grp)
	for _, q := range batch {
		if err != nil {
			q.remaining, q.ok, q.err = 0, false, err
		}
		if q != req {
			close(q.done)
		}
	}
	return req.remaining, req.ok, req.err
}

// handOver ends a lead: the first spend waiting leads the next batch, or
// the key has no spend running.
func (g *spendGroups) handOver(id string, grp *spendGroup) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(grp.waiting) == 0 {
		delete(g.groups, id)
		return
	}
	next := grp.waiting[0]
	grp.waiting = grp.waiting[1:]
	next.lead = true
	close(next.done)
}

// spendBatch decides batch's spends in order on the key's row, locked, and
// writes the result in two round trips. As a unit's commit does
// (tx.commit), it commits with synchronous_commit off, so the row is free
// again at once rather than after the commit's own WAL flush, and a
// transaction committing synchronously after it waits for the flush,
// shared by every batch and unit committing meanwhile: no answer goes out
// before its spend is durable.
func (r *Repo) spendBatch(ctx context.Context, id string, batch []*spendReq) (err error) {
	defer classify(&err)
	// One connection for both round trips (a connection released with its
	// transaction still open is closed by the pool, never reused).
	conn, err := r.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	b := &pgx.Batch{}
	b.Queue("begin")
	b.Queue("set local synchronous_commit = off")
	b.Queue(r.q.creditsForUpdate, id)
	var cr store.CreditColumns
	br := conn.SendBatch(ctx, b)
	for range 2 {
		if _, err = br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	err = br.QueryRow().Scan(&cr.Remaining, &cr.RefillAmount, &cr.RefillInterval, &cr.RefillDay, &cr.RefilledAt)
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		_, _ = conn.Exec(ctx, "rollback")
		return err
	}
	c, err := cr.Decode()
	if err == nil && c == nil {
		err = store.ErrNoCredits
	}
	if err != nil {
		_, _ = conn.Exec(ctx, "rollback")
		if !errors.Is(err, store.ErrNoCredits) {
			err = fmt.Errorf("postgres: key %s: %w", id, err)
		}
		return err
	}
	// In arrival order, each at its own now, as SQLite's units decide them
	// one by one (apikey.Credits.Spend): a due refill first (remaining
	// becomes the amount, refilled at now), then the spend only while enough
	// is left. Only a spend that is made writes (a refused one leaves even a
	// due refill unwritten; it is applied when read).
	spent := false
	for _, q := range batch {
		c, q.ok = c.Spend(q.cost, q.now)
		spent = spent || q.ok
		q.remaining = c.Remaining
	}
	if !spent {
		_, err = conn.Exec(ctx, "rollback")
		return err
	}
	b = &pgx.Batch{}
	b.Queue(r.q.setCredits, id, c.Remaining, c.RefilledAt.Unix())
	b.Queue("commit")
	b.Queue("select txid_current()")
	br = conn.SendBatch(ctx, b)
	_, err = br.Exec()
	if err == nil {
		if _, err = br.Exec(); err == nil {
			// Committed, maybe not durable yet: a failure now leaves the
			// outcome unknown.
			if _, err = br.Exec(); err != nil {
				err = store.OutcomeUnknown(err)
			}
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = store.OutcomeUnknown(cerr)
	}
	return err
}
