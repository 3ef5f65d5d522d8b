package server_test

// Deadlines: every store call runs under HSRCPAY_STORE_TIMEOUT on top of the
// request's context, so a frozen store answers 503 within it.

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

const testStoreTimeout = 500 * time.Millisecond

// within checks that f answered 503 within the store timeout (plus slack for
// a loaded machine) and returns how long it took.
func within(t *testing.T, what string, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	err := f()
	took := time.Since(start)
	wantUnavailable(t, what, err)
	if took > testStoreTimeout+time.Second {
		t.Errorf("%s answered after %v, store timeout %v", what, took, testStoreTimeout)
	}
	return took
}

func TestStoreFrozen503Postgres(t *testing.T) {
	st, proxy, _ := pgBehindProxy(t, "")
	env := testenv.New(t, testenv.Config{Store: st, StoreTimeout: testStoreTimeout})
	const acctZ = "acct_pg_frozen"
	both := env.Bootstrap(acctZ)
	m, live := both[apikey.Sandbox], both[apikey.Live]
	c := env.Client(m.Secret)
	k, err := c.CreateAPIKey(ctx, acctZ, newKey("before"))
	if err != nil {
		t.Fatal(err)
	}

	// Frozen: connections stay open, nothing comes back.
	proxy.Freeze()
	create := within(t, "create", func() error { _, err := c.CreateAPIKey(ctx, acctZ, newKey("frozen")); return err })
	regen := within(t, "regenerate", func() error { _, err := c.RegenerateAPIKey(ctx, m.PublishableID); return err })
	get := within(t, "get", func() error { _, err := c.GetAPIKey(ctx, k.ID); return err })
	list := within(t, "list", func() error {
		_, err := c.ListAPIKeysPage(ctx, acctZ, client.ListAPIKeysOptions{})
		return err
	})
	// A key not used before must be looked up: authentication waits for the store too.
	unknown := within(t, "authentication", func() error { _, err := env.Client(live.Secret).GetAPIKey(ctx, k.ID); return err })
	t.Logf("PostgreSQL frozen, store timeout %v: create 503 after %v, regenerate %v, get %v, list %v, auth %v",
		testStoreTimeout, create, regen, get, list, unknown)
	start := time.Now()
	if got := readyzStatus(t, env); got != http.StatusServiceUnavailable {
		t.Errorf("readyz with PostgreSQL frozen: %d, want 503", got)
	}
	t.Logf("readyz with PostgreSQL frozen: 503 after %v", time.Since(start))

	proxy.Thaw()
	eventually(t, 5*time.Second, "create after PostgreSQL thawed", func() error {
		_, err := c.CreateAPIKey(ctx, acctZ, newKey("after"))
		return err
	})
}

// freezeAtCommit is a store whose next unit of work, once armed, freezes the
// proxy after its last statement: its COMMIT is sent and never answered.
type freezeAtCommit struct {
	store.Store
	proxy *faultProxy
	armed atomic.Bool
}

func (s *freezeAtCommit) Repo(m apikey.Mode) store.Repository {
	return &freezeAtCommitRepo{Repository: s.Store.Repo(m), s: s}
}

type freezeAtCommitRepo struct {
	store.Repository
	s *freezeAtCommit
}

func (r *freezeAtCommitRepo) InTx(ctx context.Context, fn func(store.Tx) error) error {
	return r.Repository.InTx(ctx, func(tx store.Tx) error {
		err := fn(tx)
		if err == nil && r.s.armed.CompareAndSwap(true, false) {
			r.s.proxy.Freeze()
		}
		return err
	})
}

// A create whose COMMIT was sent but never answered may have committed: the
// 503 says outcome unknown, and indeed, once the network is back, PostgreSQL
// commits what it was sent.
func TestCommitOutcomeUnknownPostgres(t *testing.T) {
	inner, proxy, _ := pgBehindProxy(t, "")
	st := &freezeAtCommit{Store: inner, proxy: proxy}
	env := testenv.New(t, testenv.Config{Store: st, StoreTimeout: testStoreTimeout})
	const acctO = "acct_pg_outcome"
	m := env.Bootstrap(acctO)[apikey.Sandbox]
	c := env.Client(m.Secret)
	if _, err := c.GetAPIKey(ctx, m.SecretID); err != nil { // authenticated once: the cache holds the caller
		t.Fatal(err)
	}

	st.armed.Store(true)
	_, err := c.CreateAPIKey(ctx, acctO, newKey("maybe"))
	var ce *client.Error
	if !errors.As(err, &ce) || ce.StatusCode != http.StatusServiceUnavailable || ce.Code != client.CodeStoreUnavailable {
		t.Fatalf("create frozen at COMMIT: %v, want 503 50300", err)
	}
	if ce.Details["outcome"] != "unknown" {
		t.Errorf("create frozen at COMMIT: details %v, want outcome unknown", ce.Details)
	}
	proxy.Thaw()
	var found bool
	eventually(t, 5*time.Second, "list after the thaw", func() error {
		page, err := c.ListAPIKeysPage(ctx, acctO, client.ListAPIKeysOptions{})
		if err != nil {
			return err
		}
		for _, k := range page.Data {
			found = found || k.Name == "maybe"
		}
		return nil
	})
	t.Logf("the create answered 503 outcome unknown; after the thaw the key exists: %v", found)
}

// SQLite: a writer that cannot get the write lock (another process holds
// it, up to busy_timeout) answers 503 within the store timeout.
func TestStoreLocked503SQLite(t *testing.T) {
	inner, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	env := testenv.New(t, testenv.Config{Store: inner, StoreTimeout: testStoreTimeout})
	const acctL = "acct_locked"
	m := env.Bootstrap(acctL)[apikey.Sandbox]
	c := env.Client(m.Secret)
	if _, err := c.CreateAPIKey(ctx, acctL, newKey("before")); err != nil {
		t.Fatal(err)
	}
	conn, err := inner.DB(apikey.Sandbox).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close() }() // returns the handle's connection
	if _, err := conn.ExecContext(ctx, `BEGIN IMMEDIATE`); err != nil {
		t.Fatal(err)
	}
	first := within(t, "create while locked", func() error { _, err := c.CreateAPIKey(ctx, acctL, newKey("locked 1")); return err })
	second := within(t, "second create while locked", func() error { _, err := c.CreateAPIKey(ctx, acctL, newKey("locked 2")); return err })
	t.Logf("SQLite write lock held elsewhere, store timeout %v: 503 after %v and %v", testStoreTimeout, first, second)
	if _, err := conn.ExecContext(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	var after *client.APIKey
	eventually(t, 15*time.Second, "create once the lock is free", func() error {
		k, err := c.CreateAPIKey(ctx, acctL, newKey("after"))
		after = k
		return err
	})
	page, err := c.ListAPIKeysPage(ctx, acctL, client.ListAPIKeysOptions{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	if page.HasMore {
		t.Fatalf("%d keys and more: the list is not all of them", len(page.Data))
	}
	names := map[string][]string{}
	for _, k := range page.Data {
		names[k.Name] = append(names[k.Name], k.ID)
	}
	if got := names["before"]; len(got) != 1 {
		t.Errorf("the key created before the lock is listed %d times", len(got))
	}
	// The write after the lock reached the store, exactly once, as answered.
	if got := names["after"]; len(got) != 1 || got[0] != after.ID {
		t.Errorf("the key created after the lock is listed as %v, want [%s]", got, after.ID)
	}
	for _, n := range []string{"locked 1", "locked 2"} {
		if got := names[n]; len(got) != 0 {
			t.Errorf("a create answered 503 was stored: %s %v", n, got)
		}
	}
}
