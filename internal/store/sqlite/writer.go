package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	sqlite3 "modernc.org/sqlite"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Group commit. SQLite has one write lock per database, so concurrent units
// of work run one after another whatever the store does; what it can choose
// is how much each one costs. One IMMEDIATE transaction per unit from a pool
// of connections paid a COMMIT (WAL frames, and an fsync with FULL) per unit,
// parked writers in SQLite's busy handler holding pooled connections, and
// threw away every other connection's page cache at each commit.
//
// Instead one goroutine per database owns the only write connection. InTx
// queues its unit; the writer opens one transaction, runs each queued unit
// inside a SAVEPOINT of its own (a unit that fails rolls back to it, and only
// its caller sees the error), takes the units that arrive meanwhile (up to
// maxBatch, with a short linger when writes come concurrently), COMMITs once
// and only then tells each caller its outcome. Units still run strictly one
// at a time, each seeing the ones before it, so the Tx guarantees (what a
// unit reads cannot change before it commits) hold as before.
const (
	// maxBatch bounds a batch: the first unit's latency and what one failed
	// COMMIT takes down with it.
	maxBatch = 64
	// commitLinger is how long a batch stays open for more units once the
	// queue is empty, when the previous batch held more than one unit (writes
	// are arriving concurrently). A lone write commits at once.
	commitLinger = 200 * time.Microsecond
	// checkpointPages is how many pages the writer appends to the WAL before
	// it asks for a background checkpoint (SQLite's own autocheckpoint
	// threshold, which the writer turns off so that no COMMIT pays for one).
	checkpointPages = 1000
)

// The WAL's size (issue 18). The background PASSIVE checkpoint copies frames
// into the database file, but it never lets the WAL start over: SQLite
// rewrites the WAL from its beginning only when a write transaction begins
// with every frame copied and no reader still using the WAL, and under
// continuous load the writer has always appended more by then, while readers
// on the pool hold older snapshots. The WAL grew without end (2.2 GB in 30 s
// of creates beside a 69 MB database) and kept its size idle and after
// shutdown.
//
// So the writer, which knows when it is between batches and when it is idle,
// owns the policy:
//   - once walRestartPages have been appended since the WAL last started
//     over, it runs a RESTART checkpoint between two batches: it copies what
//     the background checkpoint has not, then waits (walRestartWait, SQLite's
//     busy handler) for the readers still on old snapshots, so that its next
//     COMMIT writes the WAL from the beginning. A reader that holds on longer
//     is not waited for: the writer goes on and tries again after another
//     walRetryPages, or at walHardPages if that comes first. Past
//     walHardPages it waits up to busyTimeout instead: writes queue behind
//     the checkpoint rather than the WAL growing. The length it goes by is
//     SQLite's, read after every COMMIT (walIndex): a restart that
//     readers foiled after the checkpoint reported it done shows there;
//   - journal_size_limit (walSizeLimit) cuts a file that grew past it back at
//     the first COMMIT after a restart;
//   - when no unit has come for walIdle, and at Close, it runs a TRUNCATE
//     checkpoint: the WAL file is emptied.
//
// The bound, for the README: the WAL stays below walBound (about 20 MiB with
// 4 KiB pages: walHardPages and one batch) under any sustained load, as long
// as no read holds its snapshot for longer than busyTimeout (10 s; every read
// here is one bounded query; a longer one makes writes wait for it, up to
// busyTimeout per attempt, and past that the WAL grows until it ends); it is
// truncated to zero within walIdleBound (1 s) of the load stopping, and at
// Close. TestWALBounded holds it to that.
const (
	// walRestartPages is the WAL's length, in pages appended since it last
	// started over, at which the writer restarts it (8 MiB of 4 KiB pages).
	walRestartPages = 2048
	// walTailPages is how many pages the background checkpoint may have
	// left to copy when the writer restarts the WAL (a RESTART copies them
	// while the writer waits).
	walTailPages = 256
	// walRetryPages: after a restart readers prevented, the writer tries
	// again once this many more pages have been appended.
	walRetryPages = 256
	// walHardPages: past it, the writer waits for readers as long as the
	// busy timeout allows rather than let the WAL grow.
	walHardPages = 4096
	// walRestartWait is how long a RESTART below walHardPages, or an idle
	// TRUNCATE, waits for readers on old snapshots.
	walRestartWait = 50 * time.Millisecond
	// walIdle: the writer truncates the WAL once no unit has come for this
	// long (and tries again each walIdle while readers prevent it).
	walIdle = 200 * time.Millisecond
	// walCloseWait is how long Close's TRUNCATE waits for readers.
	walCloseWait = 2 * time.Second
	// walBatchPages is an allowance for the pages one batch appends past
	// walHardPages (the writer restarts the WAL, waiting for readers, after
	// the batch that reaches it; retryAt): a create appends about 7 pages
	// (BenchmarkCreateParallel's pages/unit), a batch holds up to maxBatch
	// units, and TestWALBounded's batches of inserts appended at most ~190.
	walBatchPages = 1024
	// walSizeLimit is journal_size_limit, in bytes.
	walSizeLimit = walHardPages * walFrameBytes
	// walFrameBytes is a WAL frame: a page (4 KiB, SQLite's default) and its
	// 24-byte header.
	walFrameBytes = 4096 + 24
	// walBound is what the WAL file never exceeds (see above): its 32-byte
	// header and walHardPages and one batch of frames.
	walBound = 32 + (walHardPages+walBatchPages)*walFrameBytes
	// walIdleBound is how soon after the last write the WAL is empty, with
	// room for a checkpoint that readers delay (walIdle, then walRestartWait,
	// a retry each walIdle).
	walIdleBound = time.Second
)

var (
	errClosed = errors.New("sqlite: store closed")
	// errTxDone is what a Tx used after its unit ended gets, as database/sql's
	// ErrTxDone after Commit or Rollback.
	errTxDone = errors.New("sqlite: the unit of work has ended")
	// errRolledBack reports a transaction SQLite rolled back without a
	// statement error to say why (never expected: a safety net).
	errRolledBack = errors.New("sqlite: the transaction was rolled back")
)

// A unit's state: the writer takes a queued unit, or its caller, whose
// context ended first, abandons it; never both. A taken unit may still be
// abandoned until its fn starts (unitRunning): the writer may be waiting for
// the write lock (BEGIN, up to busy_timeout, which no context interrupts),
// and the caller's deadline must hold meanwhile.
const (
	unitQueued int32 = iota
	unitTaken
	unitRunning
	unitAbandoned
)

// unit is one InTx call waiting for, or in, a batch.
type unit struct {
	ctx   context.Context
	fn    func(store.Tx) error
	state atomic.Int32
	// Set by the writer before done is closed.
	err      error
	panicked bool
	panicVal any
	// byCommit: the unit's outcome stands only if its batch commits: its
	// changes were released into the transaction, or its error may stem
	// from another unit's uncommitted ones.
	byCommit bool
	done     chan struct{}
}

// writer owns one database's write connection and runs every unit of work.
type writer struct {
	db   *sql.DB // its own handle, of one connection
	conn *sql.Conn
	st   writerStmts
	keys keyCache    // keycache.go
	mode apikey.Mode // what the events appended here belong to
	// inst is the Store's instance: the holder of the claims written here.
	inst *instance

	mu      sync.RWMutex // closed against enqueue: no send on a closed queue
	closed  bool
	queue   chan *unit
	stopped chan struct{} // closed when the loop has drained the queue and returned

	// rolledBack is set by SQLite's rollback hook: the whole transaction is
	// gone (SQLITE_FULL, IOERR, BUSY, NOMEM, an interrupt, a failed COMMIT),
	// and a statement run now would autocommit on its own. abortErr is the
	// statement error that came with it. Both belong to the writer goroutine
	// (the hook runs inside its statements); the atomic keeps the race
	// detector honest about a Tx leaked to another goroutine.
	rolledBack atomic.Bool
	abortErr   error
	// inTx: the batch's transaction is open. A unit run without a savepoint
	// (runUnit) that fails ends it with a ROLLBACK; the next unit of the
	// batch begins another.
	inTx bool

	linger    time.Duration
	lastBatch int // units in the previous batch
	timer     *time.Timer
	batch     []*unit

	walPages int           // pages written to the WAL since the last checkpoint request
	wal      walIndex      // SQLite's count of the WAL's frames (walindex.go)
	kick     chan struct{} // asks the checkpointer for a PASSIVE checkpoint
	// ckpt is held by the background checkpointer while it runs and by the
	// writer's own checkpoints: SQLite never waits for the checkpoint lock
	// (a RESTART would fail at once while a PASSIVE runs), so the writer
	// waits for the PASSIVE here; what that copies, it need not copy.
	ckpt sync.Mutex
	// walFrames is the WAL's length in frames: SQLite's count, read after
	// each COMMIT (walIndex), else the pages the writer appended since the
	// WAL last started over; restartAt is the length at which the writer
	// next restarts it.
	walFrames, restartAt int
	walDirty             bool // appended to since the last TRUNCATE
	// backfilled is the frames of the WAL the background checkpointer had
	// copied when it last finished (set under ckpt).
	backfilled atomic.Int64
	idle       *time.Timer // walIdle after the last batch

	batches, units atomic.Int64 // for tests and benchmarks: how well units group
	pagesWritten   atomic.Int64 // for benchmarks: the pages COMMITs appended to the WAL
	rotations      int64        // for tests: UpdateKeys that ran rotateKeySQL
	// For tests and benchmarks: the writer's checkpoints, those that
	// completed, and the time the writer spent in them.
	walCheckpoints, walCompleted, walCheckpointNanos atomic.Int64
}

// writerStmts are every statement a unit runs, compiled once on the writer's
// connection.
type writerStmts struct {
	begin, commit, rollback, savepoint, release, rollbackTo *sql.Stmt
	dataVersion                                             *sql.Stmt

	createAccount, deleteEvents, deleteKeys, deleteAccount *sql.Stmt
	getKey, capReached, releaseName, insertKey, updateKey  *sql.Stmt
	rotateKey                                              *sql.Stmt
	lockAccount, insertEvent, setAuditHead, recordUsage    *sql.Stmt
	readCredits, setCredits                                *sql.Stmt
	idem                                                   idemStmts // idempotency.go
}

func newWriter(ctx context.Context, db *sql.DB, mode apikey.Mode, path string) (*writer, error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	w := &writer{
		db: db, conn: conn, mode: mode,
		keys:    newKeyCache(),
		queue:   make(chan *unit, maxBatch),
		stopped: make(chan struct{}),
		linger:  commitLinger,
		timer:   time.NewTimer(time.Hour),
		kick:    make(chan struct{}, 1),
		idle:    time.NewTimer(time.Hour),

		restartAt: walRestartPages,
		wal:       walIndex{path: path + "-shm"},
	}
	w.timer.Stop()
	w.idle.Stop()
	err = conn.Raw(func(dc any) error {
		h, ok := dc.(interface {
			RegisterRollbackHook(sqlite3.RollbackHookFn)
		})
		if !ok {
			return fmt.Errorf("sqlite: driver connection %T has no rollback hook", dc)
		}
		h.RegisterRollbackHook(func() { w.rolledBack.Store(true) })
		return nil
	})
	if err == nil {
		err = w.prepare(ctx)
	}
	if err != nil {
		_ = conn.Close() // err is the one to report
		return nil, err
	}
	// The writer outlives Open's context: Close stops it.
	go w.loop(context.WithoutCancel(ctx))
	return w, nil
}

func (w *writer) prepare(ctx context.Context) error {
	for _, p := range w.statements() {
		st, err := w.conn.PrepareContext(ctx, p.sql) //nolint:sqlclosecheck // kept for the writer's life; close closes the connection and with it its statements
		if err != nil {
			return fmt.Errorf("%s: %w", p.sql, err)
		}
		*p.dst = st
	}
	return nil
}

// statements are the writer's statements and where it keeps them
// (TestStatementPlans reads their plans).
func (w *writer) statements() []stmtSQL {
	return append([]stmtSQL{
		// IMMEDIATE: the write lock from BEGIN, so that a tool writing through
		// another connection waits (busy_timeout) at BEGIN, never mid-batch.
		{&w.st.begin, `BEGIN IMMEDIATE`},
		{&w.st.commit, `COMMIT`},
		{&w.st.rollback, `ROLLBACK`},
		{&w.st.savepoint, `SAVEPOINT unit`},
		{&w.st.release, `RELEASE unit`},
		{&w.st.rollbackTo, `ROLLBACK TO unit`},
		// Changes when another connection commits (keycache.go).
		{&w.st.dataVersion, `PRAGMA data_version`},
		{&w.st.createAccount, `INSERT INTO accounts (id, created_at) VALUES (?, ?)`},
		{&w.st.deleteEvents, `DELETE FROM audit_events WHERE account_id = ?`},
		{&w.st.deleteKeys, `DELETE FROM api_keys WHERE account_id = ?`},
		{&w.st.deleteAccount, `DELETE FROM accounts WHERE id = ?`},
		{&w.st.getKey, getKeySQL},
		// The counter of keys not deleted (migration 00008) while below the cap;
		// else an index-only walk of the account's keys not deleted in
		// api_keys_account_keys (migration 00015), until ?3 are active. CASE runs the subquery only on that branch.
		{&w.st.capReached, `SELECT CASE WHEN live_keys < ?3 THEN 0 ELSE (SELECT count(*) FROM (SELECT 1 FROM api_keys
		WHERE account_id = ?1 AND deleted = 0 AND (expires_at IS NULL OR expires_at > ?2) LIMIT ?3)) >= ?3 END
		FROM accounts WHERE id = ?1`},
		{&w.st.releaseName, `UPDATE api_keys SET name_released = 1
		WHERE account_id = ? AND name_key = ? AND deleted = 0 AND name_released = 0
		AND expires_at IS NOT NULL AND expires_at <= ?`},
		{&w.st.insertKey, insertKeySQL},
		{&w.st.updateKey, updateKeySQL},
		{&w.st.rotateKey, rotateKeySQL},
		{&w.st.lockAccount, `SELECT audit_seq, audit_head, live_keys FROM accounts WHERE id = ?`},
		{&w.st.insertEvent, `INSERT INTO audit_events (` + eventColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&w.st.setAuditHead, `UPDATE accounts SET audit_seq = ?, audit_head = ? WHERE id = ?`},
		{&w.st.recordUsage, `UPDATE api_keys SET last_used_at = ?, last_used_ip = ?
		WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`},
		{&w.st.readCredits, `SELECT ` + creditColumns + ` FROM api_keys WHERE id = ?`},
		{&w.st.setCredits, `UPDATE api_keys SET credits_remaining = ?, credits_refilled_at = ? WHERE id = ?`},
	}, w.idemStatements()...)
}

// run queues fn as a unit and waits for its outcome: nil only once the batch
// holding it has committed.
func (w *writer) run(ctx context.Context, fn func(store.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	u := &unit{ctx: ctx, fn: fn, done: make(chan struct{})}
	w.mu.RLock()
	if w.closed {
		w.mu.RUnlock()
		return errClosed
	}
	select {
	case w.queue <- u:
	case <-ctx.Done():
		w.mu.RUnlock()
		return ctx.Err()
	}
	w.mu.RUnlock()
	select {
	case <-u.done:
	case <-ctx.Done():
		if u.state.CompareAndSwap(unitQueued, unitAbandoned) || u.state.CompareAndSwap(unitTaken, unitAbandoned) {
			return ctx.Err() // never ran and never will
		}
		<-u.done // running or run: its outcome is the commit's, so wait for it
	}
	if u.panicked {
		panic(u.panicVal)
	}
	return u.err
}

func (w *writer) isClosed() bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	return w.closed
}

// close stops taking units, lets the writer run those already queued, and
// waits for it to finish.
func (w *writer) close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.stopped
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.queue) // no sender can be in run's send now: they hold mu.RLock
	<-w.stopped
	return errors.Join(w.wal.close(), w.conn.Close(), w.db.Close())
}

// loop runs batches until the queue is closed and empty. ctx carries no
// deadline: the writer's own statements (BEGIN, savepoints, COMMIT) are
// never cut short by a caller.
func (w *writer) loop(ctx context.Context) {
	defer close(w.stopped)
	defer close(w.kick) // the checkpointer's signal to stop
	for {
		u, ok := w.next(ctx)
		if !ok {
			break
		}
		w.runBatch(ctx, u)
		// Even a batch that failed may have written frames (a COMMIT that
		// ran out of disk): the idle TRUNCATE gives the space back.
		w.walDirty = true
		// The callers have their outcomes: a checkpoint now delays only the
		// units queued since.
		w.restartWAL(ctx)
	}
	// A clean shutdown leaves an empty WAL (SQLite's own checkpoint when the
	// last connection closes did not remove a WAL of 1 GB).
	w.checkpointWAL(ctx, "TRUNCATE", walCloseWait)
}

// restartWAL restarts the WAL once it has reached restartAt. The copying is
// the background checkpointer's: the writer asks it for PASSIVE checkpoints
// and goes on with its batches until what it has not copied is at most
// walTailPages; then the writer's RESTART copies only that tail before it
// waits for the readers. Past walHardPages it no longer waits for the
// background: it restarts the WAL itself whatever it has to copy.
func (w *writer) restartWAL(ctx context.Context) {
	if w.walFrames < w.restartAt {
		return
	}
	if w.walFrames >= walHardPages {
		w.checkpointWAL(ctx, "RESTART", busyTimeout)
		return
	}
	if w.walFrames-int(w.backfilled.Load()) <= walTailPages {
		w.checkpointWAL(ctx, "RESTART", walRestartWait)
		return
	}
	select {
	case w.kick <- struct{}{}:
	default: // one is pending already: it starts after this batch's COMMIT
	}
}

// next waits for the next unit, and truncates the WAL while none comes.
// ok is false once the queue is closed and empty.
func (w *writer) next(ctx context.Context) (u *unit, ok bool) {
	select {
	case u, ok = <-w.queue:
		return u, ok
	default:
	}
	for w.walDirty {
		w.idle.Reset(walIdle)
		select {
		case u, ok = <-w.queue:
			w.idle.Stop()
			return u, ok
		case <-w.idle.C:
			w.checkpointWAL(ctx, "TRUNCATE", walRestartWait)
		}
	}
	u, ok = <-w.queue
	return u, ok
}

// checkpointWAL runs a RESTART or TRUNCATE checkpoint on the writer's
// connection, between batches, waiting at most wait for readers on old
// snapshots. When it completes, the next COMMIT writes the WAL from its
// beginning (TRUNCATE also empties the file); when readers or an error
// prevent it, the writer tries again later (restartAt, or the next idle).
func (w *writer) checkpointWAL(ctx context.Context, mode string, wait time.Duration) {
	start := time.Now()
	w.ckpt.Lock()
	defer func() {
		w.ckpt.Unlock()
		w.walCheckpoints.Add(1)
		w.walCheckpointNanos.Add(int64(time.Since(start)))
	}()
	// busy_timeout takes effect when the PRAGMA is prepared, so these are
	// not prepared statements; the connection's own is restored after.
	if _, err := w.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", wait.Milliseconds())); err != nil {
		w.restartAt = retryAt(w.walFrames)
		return
	}
	var busy, log, moved int
	err := w.conn.QueryRowContext(ctx, "PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &log, &moved)
	if _, rerr := w.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA busy_timeout = %d", busyTimeout.Milliseconds())); rerr != nil && err == nil {
		err = rerr
	}
	switch {
	case err == nil && busy == 0:
		w.walFrames, w.restartAt = 0, walRestartPages
		w.backfilled.Store(0) // the next COMMIT starts a new WAL
		w.walCompleted.Add(1)
		w.walDirty = w.walDirty && mode != "TRUNCATE"
	case err == nil && log >= 0:
		w.walFrames = log // SQLite's count of the frames in the WAL
		w.restartAt = retryAt(log)
	default:
		w.restartAt = retryAt(w.walFrames)
	}
}

// retryAt is the WAL's length at which the writer tries again a restart
// that readers (or an error) prevented at length frames: walRetryPages
// later, but never past walHardPages, where it stops giving up after
// walRestartWait. (A retry at frames+walRetryPages from just below
// walHardPages let the WAL reach walHardPages+walRetryPages and a batch
// before the writer waited for readers: past walBound.)
func retryAt(frames int) int {
	if frames < walHardPages {
		return min(frames+walRetryPages, walHardPages)
	}
	return frames + walRetryPages
}

// runBatch runs first and what follows it in one transaction, then reports
// every outcome.
func (w *writer) runBatch(ctx context.Context, first *unit) {
	w.batch = w.batch[:0]
	if !first.state.CompareAndSwap(unitQueued, unitTaken) {
		return // abandoned while queued: nothing to begin for
	}
	w.batch = append(w.batch, first)
	if err := w.begin(ctx); err != nil {
		w.finish(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	dirty := false // a unit's changes are in the transaction, uncommitted
	w.runUnit(ctx, first, &dirty)
	var deadline time.Time
	for len(w.batch) < maxBatch && !w.rolledBack.Load() {
		var (
			u  *unit
			ok bool
		)
		select {
		case u, ok = <-w.queue:
		default:
			if w.linger <= 0 || w.lastBatch < 2 && len(w.batch) < 2 {
				ok = false
				break
			}
			now := time.Now()
			if deadline.IsZero() {
				deadline = now.Add(w.linger)
			}
			if !now.Before(deadline) {
				ok = false
				break
			}
			w.timer.Reset(deadline.Sub(now))
			select {
			case u, ok = <-w.queue:
				w.timer.Stop()
			case <-w.timer.C:
				continue // one last look at the queue, then commit
			}
		}
		if !ok {
			break // queue empty (or closed): commit what we have
		}
		if !u.state.CompareAndSwap(unitQueued, unitTaken) {
			continue
		}
		w.batch = append(w.batch, u)
		if !w.inTx {
			// The units before it failed, and the last one ended the
			// transaction (runUnit): begin another for this one.
			if err := w.begin(ctx); err != nil {
				u.err = fmt.Errorf("sqlite: begin: %w", err)
				break
			}
		}
		w.runUnit(ctx, u, &dirty)
	}
	w.lastBatch = len(w.batch)
	w.batches.Add(1)
	w.units.Add(int64(len(w.batch)))
	if !w.inTx {
		// Every unit failed, and the last one's transaction was rolled
		// back (runUnit), or the next could not begin: nothing to commit,
		// and each unit has its own error.
		w.finish(nil)
		return
	}
	if w.rolledBack.Load() {
		w.inTx = false
		w.finish(w.abortError())
		return
	}
	w.inTx = false
	if _, err := w.st.commit.ExecContext(ctx); err != nil {
		// A COMMIT that failed may have left the transaction open (SQLITE_BUSY
		// does): end it, so that the next batch starts clean.
		if !w.rolledBack.Load() {
			_, _ = w.st.rollback.ExecContext(ctx) // the COMMIT's error is the one to report
		}
		w.finish(commitFailed(fmt.Errorf("sqlite: commit: %w", err)))
		return
	}
	w.countWAL()
	w.finish(nil)
}

// begin opens a batch's transaction. A connection still inside one (a
// ROLLBACK that failed after a failed COMMIT) is rolled back first, so that
// one bad batch cannot fail every later one.
func (w *writer) begin(ctx context.Context) error {
	_, err := w.st.begin.ExecContext(ctx)
	if err != nil {
		if _, rerr := w.st.rollback.ExecContext(ctx); rerr == nil {
			_, err = w.st.begin.ExecContext(ctx)
		}
	}
	w.rolledBack.Store(false) // from here on, the rollback hook speaks of this transaction
	w.abortErr = nil
	w.inTx = err == nil
	if err == nil {
		// Holding the write lock: what another connection committed is in
		// this transaction's snapshot, and nothing more can come.
		var v int64
		if verr := w.st.dataVersion.QueryRowContext(ctx).Scan(&v); verr != nil {
			w.keys.forget()
		} else {
			w.keys.sawVersion(v)
		}
	}
	return err
}

// runUnit runs u's fn inside a savepoint. dirty tells whether an earlier unit
// of the batch left changes; it becomes true when u does.
//
// A unit that no earlier one left changes before (the first of a batch,
// as a rule) runs without a savepoint: if it fails, a ROLLBACK of the
// whole transaction undoes exactly what it did, and the next unit of the
// batch begins another (runBatch). A savepoint costs its two statements
// and a copy of each page the unit changes, in case it rolls back (the
// journal): ~30% of a usage flush, a unit of its own.
func (w *writer) runUnit(ctx context.Context, u *unit, dirty *bool) {
	u.err = u.ctx.Err() // cancelled while queued but not yet abandoned: do not run it
	if u.err != nil || !u.state.CompareAndSwap(unitTaken, unitRunning) {
		if u.err == nil {
			u.err = context.Canceled // abandoned by its caller, who has gone with its own error
		}
		return
	}
	savepoint := *dirty
	if savepoint {
		if _, err := w.st.savepoint.ExecContext(ctx); err != nil {
			u.err = w.note(err)
			return
		}
	}
	t := &tx{w: w, ctx: u.ctx}
	err := w.call(u, t)
	if err == nil && !u.panicked && !w.rolledBack.Load() {
		// A ReleaseExpiredName that no insert made moot is run now, as
		// part of the unit (see ReleaseExpiredName).
		err = t.releaseNow(ctx) // usable checks u.ctx too
	}
	t.ended.Store(true)
	if w.rolledBack.Load() {
		w.keys.unitEnded(false)
		return // the transaction is gone, savepoint and all: finish reports it
	}
	if err == nil && !u.panicked {
		// A caller that gave up while fn ran gets what it would have got had
		// it given up a moment earlier: nothing written.
		err = u.ctx.Err()
	}
	if err != nil || u.panicked {
		u.err = err
		w.keys.unitEnded(false)
		if !savepoint {
			w.rollbackUnit(ctx)
			return // byCommit stays false: nothing of another unit was there to see
		}
		_, rerr := w.st.rollbackTo.ExecContext(ctx)
		if rerr == nil {
			_, rerr = w.st.release.ExecContext(ctx)
		}
		if rerr != nil { // the savepoint is gone, so is the transaction
			w.rolledBack.Store(true)
			_ = w.note(rerr) // the batch's cause, which finish reports
		}
		// An error from a unit that saw another's uncommitted changes may
		// stem from them (a name taken by a unit whose batch then fails):
		// keep it only if the batch commits.
		u.byCommit = *dirty
		return
	}
	if savepoint {
		if _, err := w.st.release.ExecContext(ctx); err != nil {
			w.rolledBack.Store(true) // a RELEASE fails only when the savepoint, hence the transaction, is gone
			u.err = w.note(err)
			w.keys.unitEnded(false)
			return
		}
	}
	u.byCommit, *dirty = true, true
	t.applyAccts()
	w.keys.unitEnded(true)
}

// rollbackUnit ends the transaction of a unit that failed without a
// savepoint: it holds only that unit's changes. If the ROLLBACK fails, the
// transaction is treated as SQLite's rollback would be: the batch fails
// (it holds no other unit's changes) and the next BEGIN ends what is left.
func (w *writer) rollbackUnit(ctx context.Context) {
	if _, err := w.st.rollback.ExecContext(ctx); err != nil {
		w.rolledBack.Store(true)
		_ = w.note(err)
		return
	}
	w.inTx = false
	w.rolledBack.Store(false) // the hook saw this ROLLBACK: no transaction to speak of until the next BEGIN
}

// call runs fn, turning a panic into the unit's outcome: the writer lives on
// and its caller panics with the same value.
func (w *writer) call(u *unit, t *tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			u.panicked, u.panicVal = true, p
		}
	}()
	return u.fn(t)
}

// finish reports the batch's outcome: batchErr (a failed BEGIN or COMMIT, or
// a rolled-back transaction) fails every unit that ran or depended on what
// ran; otherwise each unit gets its own.
func (w *writer) finish(batchErr error) {
	for _, u := range w.batch {
		if batchErr != nil && (u.byCommit || u.err == nil) && !u.panicked {
			u.err = batchErr
		}
		close(u.done)
	}
	w.keys.batchEnded(batchErr == nil)
	clear(w.batch) // no references to finished units and their closures
	w.batch = w.batch[:0]
}

// note records err as the reason the transaction ended if SQLite rolled it
// back while running the statement that returned err.
func (w *writer) note(err error) error {
	if err != nil && w.rolledBack.Load() && w.abortErr == nil {
		w.abortErr = err
	}
	return err
}

func (w *writer) abortError() error {
	if w.abortErr != nil {
		return fmt.Errorf("sqlite: transaction rolled back: %w", w.abortErr)
	}
	return errRolledBack
}

// countWAL adds the pages the COMMIT wrote to the WAL, takes the WAL's
// length from SQLite (walIndex), and asks for a checkpoint once the pages
// reach checkpointPages.
func (w *writer) countWAL() {
	before := w.walPages
	_ = w.conn.Raw(func(dc any) error {
		if s, ok := dc.(sqlite3.DBStatus); ok {
			n, _, err := s.Status(sqlite3.DBStatusCacheWrite, true)
			if err == nil {
				w.walPages += n
			}
		}
		return nil
	}) // an error here only delays the next checkpoint
	if n, ok := w.wal.frames(); ok {
		w.walFrames = n
	} else {
		w.walFrames += w.walPages - before
	}
	w.pagesWritten.Add(int64(w.walPages - before))
	if w.walPages >= checkpointPages {
		w.walPages = 0
		select {
		case w.kick <- struct{}{}:
		default: // one is pending already
		}
	}
}

// checkpoint copies the WAL back into the database file in the background
// whenever the writer asks, PASSIVE so that it never waits for (or blocks)
// readers or the writer: frames still needed by a reader stay for the next
// one. It stops when the writer has.
func checkpoint(ctx context.Context, db *sql.DB, w *writer, done chan<- struct{}, count *atomic.Int64) {
	defer close(done)
	for range w.kick {
		var busy, log, moved int
		// An error (the file went away, I/O) leaves the frames to the next
		// attempt or the writer's; commits do not depend on it.
		w.ckpt.Lock()
		err := db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`).Scan(&busy, &log, &moved)
		if err == nil {
			w.backfilled.Store(int64(moved))
		}
		w.ckpt.Unlock()
		if err == nil {
			count.Add(1)
		}
	}
}
