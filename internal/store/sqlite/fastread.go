package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"sync"

	sqlite3lib "modernc.org/sqlite/lib"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// fastReaders run the hot reads (GetKey, KeyBySecretHash, AccountExists,
// an unfiltered ListKeys page) on connections of their own, opened through
// the driver and used through its interfaces, not through database/sql.
//
// Why: the server calls every read with a context that can end (the store
// timeout, store.WithTimeout). For such a context database/sql starts a
// goroutine per query to watch it (Rows.awaitDone, with a context.WithCancel)
// and so does the driver (an interrupt watcher, with a progress handler set
// and cleared on the connection); on two cores that doubled a get's CPU
// (BenchmarkReadsBounded/get_key ~31 µs, BenchmarkReads/get_key with a
// context that cannot end ~15 µs), and database/sql's statement lookup,
// Rows and Scan conversions cost more than the statement itself.
//
// What still bounds a read here, without a watcher:
//   - waiting for a connection watches ctx (get), as database/sql's pool does;
//   - a lock: these connections have busy_timeout 0, so a read that would
//     wait for one (a WAL recovery by another connection, a file locked
//     exclusively) does not: SQLITE_BUSY sends it to the pool path
//     (Repo.rdb, the caller's ctx, busy_timeout), which waits under the
//     caller's deadline as every read did before;
//   - the statements: each is a lookup by a unique key or a range of an
//     index ending at LIMIT rows (TestStatementPlans), never a scan, so it
//     runs for what reading a few pages takes. A filtered list may walk all
//     of an account's keys and stays on the pool path, interruptible.
//
// A disk that stalls stalls a read here as it did there: a read() or a
// fault on a mapped page (readerMmapBytes) is not interrupted by SQLite.
type fastReaders struct {
	free   chan *fastReader
	closed chan struct{} // closed by close: no read starts any more
	all    []*fastReader
	once   sync.Once // close's: a store may be closed twice
	err    error     // close's
}

// fastReader is one connection and its statements, prepared once. Only the
// goroutine that took it from free uses it.
type fastReader struct {
	conn                          driver.Conn
	getKey, byHash, accountExists driver.Stmt
	listFirst, listAfter          driver.Stmt // ListKeys shapes 0 and listAfter
	dest                          [1]driver.Value
	args                          [10]driver.NamedValue
}

// fastReadSQL are the statements a fastReader prepares, in its order.
func fastReadSQL() []string {
	return []string{getKeyJoinedSQL, byHashJoinedSQL, accountExistsSQL, listKeysSQL(0), listKeysSQL(listAfter)}
}

// byHashJoinedSQL is byHashSQL reading joinedKeyColumns.
var byHashJoinedSQL = `SELECT ` + joinedKeyColumns + ` FROM api_keys WHERE secret_hash = ?1
	UNION ALL
	SELECT ` + joinedKeyColumns + ` FROM api_keys WHERE prev_secret_hash = (SELECT ?1)
		AND NOT EXISTS (SELECT 1 FROM api_keys WHERE secret_hash = ?1)`

// openFastReaders opens n connections to dsn through drv and prepares their
// statements.
func openFastReaders(ctx context.Context, drv driver.Driver, dsn string, n int) (_ *fastReaders, err error) {
	p := &fastReaders{free: make(chan *fastReader, n), closed: make(chan struct{})}
	defer func() {
		if err != nil {
			_ = p.close() // the open's error is the one to report
		}
	}()
	for range n {
		fr, err := openFastReader(ctx, drv, dsn)
		if err != nil {
			return nil, err
		}
		p.all = append(p.all, fr)
		p.free <- fr
	}
	return p, nil
}

func openFastReader(ctx context.Context, drv driver.Driver, dsn string) (_ *fastReader, err error) {
	c, err := drv.Open(dsn)
	if err != nil {
		return nil, err
	}
	fr := &fastReader{conn: c}
	defer func() {
		if err != nil {
			_ = fr.close() // err is the one to report
		}
	}()
	prep, ok := c.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("sqlite: driver connection %T does not prepare with a context", c)
	}
	for i, q := range fastReadSQL() {
		st, err := prep.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		*fr.stmts()[i] = st
		if _, ok := st.(driver.StmtQueryContext); !ok {
			return nil, fmt.Errorf("sqlite: driver statement %T does not query with a context", st)
		}
	}
	return fr, nil
}

// stmts are fr's statements, in fastReadSQL's order.
func (fr *fastReader) stmts() [5]*driver.Stmt {
	return [5]*driver.Stmt{&fr.getKey, &fr.byHash, &fr.accountExists, &fr.listFirst, &fr.listAfter}
}

func (fr *fastReader) close() error {
	var errs []error
	for _, st := range fr.stmts() {
		if *st != nil {
			errs = append(errs, (*st).Close())
		}
	}
	return errors.Join(append(errs, fr.conn.Close())...)
}

// get takes a free reader, waiting while ctx lasts; errClosed once the
// store is closing (the callers then leave the read to the pool path, whose
// answer a closed store's has always been).
func (p *fastReaders) get(ctx context.Context) (*fastReader, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var fr *fastReader
	select {
	case fr = <-p.free:
	default:
		select {
		case fr = <-p.free:
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-p.closed:
			return nil, errClosed
		}
	}
	select {
	case <-p.closed:
		p.free <- fr // for close, which waits for every reader
		return nil, errClosed
	default:
	}
	return fr, nil
}

func (p *fastReaders) put(fr *fastReader) { p.free <- fr }

// close waits for the reads in progress and closes the connections.
func (p *fastReaders) close() error {
	p.once.Do(func() {
		close(p.closed)
		var errs []error
		for range p.all {
			errs = append(errs, (<-p.free).close())
		}
		p.err = errors.Join(errs...)
	})
	return p.err
}

// busy reports whether err is SQLite's SQLITE_BUSY: the read would have
// waited for a lock, which the pool path does under the caller's context.
func busy(err error) bool { return primaryCode(err) == sqlite3lib.SQLITE_BUSY }

// texts runs st with args and calls each with every row's one text column;
// false (and no error) for a row whose value is not a text (each is not
// called for it, nor for the rows after it).
func (fr *fastReader) texts(st driver.Stmt, args []driver.NamedValue, each func(string) (bool, error)) (ok bool, err error) {
	// context.Background: no watcher (see fastReaders).
	rows, err := st.(driver.StmtQueryContext).QueryContext(context.Background(), args) //nolint:forcetypeassert // checked at open
	if err != nil {
		return false, err
	}
	defer func() {
		if cerr := rows.Close(); err == nil && cerr != nil {
			ok, err = false, cerr
		}
	}()
	for {
		if err := rows.Next(fr.dest[:]); err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil
			}
			return false, err
		}
		s, isText := fr.dest[0].(string)
		fr.dest[0] = nil
		if !isText {
			return false, nil
		}
		if ok, err := each(s); !ok || err != nil {
			return ok, err
		}
	}
}

// arg1 is one positional argument.
func (fr *fastReader) arg1(v driver.Value) []driver.NamedValue {
	fr.args[0] = driver.NamedValue{Ordinal: 1, Value: v}
	return fr.args[:1]
}

// release forgets the last call's arguments (the caller's strings) and
// hands fr back.
func (p *fastReaders) release(fr *fastReader) {
	fr.args = [len(fr.args)]driver.NamedValue{}
	p.put(fr)
}

// The hot reads on a fastReader. done false (and no error): read it on the
// pool path instead, as before (a lock to wait for, or a row only scanKey
// reads).

func (r *Repo) fastGetKey(ctx context.Context, id string) (*apikey.Key, bool, error) {
	return r.fastOneKey(ctx, func(fr *fastReader) (driver.Stmt, []driver.NamedValue) { return fr.getKey, fr.arg1(id) })
}

func (r *Repo) fastKeyBySecretHash(ctx context.Context, hash []byte) (*apikey.Key, bool, error) {
	return r.fastOneKey(ctx, func(fr *fastReader) (driver.Stmt, []driver.NamedValue) { return fr.byHash, fr.arg1(hash) })
}

// fastOneKey reads the one key query picks, store.ErrNotFound for none.
func (r *Repo) fastOneKey(ctx context.Context, query func(*fastReader) (driver.Stmt, []driver.NamedValue)) (_ *apikey.Key, done bool, _ error) {
	ks, done, err := r.fastKeys(ctx, query, 1)
	if !done || err != nil {
		return nil, done, err
	}
	if len(ks) == 0 {
		return nil, true, store.ErrNotFound
	}
	return ks[0], true, nil
}

// fastListKeys reads a page of shape 0 or listAfter (no filter: a range of
// api_keys_account_keys ending at the limit); args are ListKeys'.
func (r *Repo) fastListKeys(ctx context.Context, shape int, args *[10]any, size int) ([]*apikey.Key, bool, error) {
	return r.fastKeys(ctx, func(fr *fastReader) (driver.Stmt, []driver.NamedValue) {
		st := fr.listFirst
		if shape == listAfter {
			st = fr.listAfter
		}
		for i, a := range args {
			if n, ok := a.(int); ok {
				a = int64(n) // as database/sql converts it
			}
			fr.args[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
		}
		return st, fr.args[:]
	}, size)
}

// fastKeys runs the statement query picks on a free reader and reads its
// rows (one joinedKeyColumns text each) as scanJoinedKeys does.
func (r *Repo) fastKeys(ctx context.Context, query func(*fastReader) (driver.Stmt, []driver.NamedValue), size int) (_ []*apikey.Key, done bool, _ error) {
	fr, err := r.fast.get(ctx)
	if errors.Is(err, errClosed) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	defer r.fast.release(fr)
	out := make([]*apikey.Key, 0, size)
	var pb *pageBuf // a page's keys in a few arrays; one key's its own
	if size > 1 {
		pb = newPageBuf(size)
	}
	st, args := query(fr)
	ok, err := fr.texts(st, args, func(row string) (bool, error) { //nolint:contextcheck // no ctx on purpose: no watcher (see fastReaders); waiting for fr watched it
		k, ok, err := scanJoinedKey(row, pb)
		if ok && err == nil {
			out = append(out, k)
		}
		return ok, err
	})
	switch {
	case busy(err), err == nil && !ok:
		return nil, false, nil
	case err != nil:
		return nil, true, err
	}
	return out, true, nil
}

func (r *Repo) fastAccountExists(ctx context.Context, id string) (exists, done bool, _ error) {
	fr, err := r.fast.get(ctx)
	if errors.Is(err, errClosed) {
		return false, false, nil
	}
	if err != nil {
		return false, true, err
	}
	defer r.fast.release(fr)
	rows, err := fr.accountExists.(driver.StmtQueryContext).QueryContext(context.Background(), fr.arg1(id)) //nolint:forcetypeassert,contextcheck // checked at open; no watcher (see fastReaders)
	if busy(err) {
		return false, false, nil
	}
	if err != nil {
		return false, true, err
	}
	defer func() { _ = rows.Close() }() // a count's one row: Next reports a failed read
	if err := rows.Next(fr.dest[:]); err != nil {
		return false, !busy(err), ignoreBusy(err)
	}
	n, isInt := fr.dest[0].(int64)
	fr.dest[0] = nil
	if !isInt {
		return false, false, nil // as database/sql would read it
	}
	return n > 0, true, nil
}

// ignoreBusy is err unless it is busy's.
func ignoreBusy(err error) error {
	if busy(err) {
		return nil
	}
	return err
}
