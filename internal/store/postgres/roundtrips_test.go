package postgres_test

import (
	"context"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// roundTrips records what each round trip to the server carried: one query,
// or one batch of them (pipelined: one round trip).
type roundTrips struct {
	mu    sync.Mutex
	on    bool
	trips []string
	batch []string
}

func (r *roundTrips) add(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on {
		r.trips = append(r.trips, s)
	}
}

func (r *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(strings.Join(strings.Fields(d.SQL), " "))
	return ctx
}

func (r *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}

func (r *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = r.batch[:0]
	return ctx
}

func (r *roundTrips) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batch = append(r.batch, strings.Join(strings.Fields(d.SQL), " "))
}

func (r *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {
	r.mu.Lock()
	b := "batch[" + strings.Join(r.batch, " ; ") + "]"
	r.mu.Unlock()
	r.add(b)
}

// count runs fn and returns its round trips, and how many of them happened
// while it held its account's row lock (from the query that took it to the
// COMMIT, both included).
func (r *roundTrips) count(t *testing.T, fn func()) (total, locked int) {
	t.Helper()
	r.mu.Lock()
	r.on, r.trips = true, nil
	r.mu.Unlock()
	fn()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on = false
	from := -1
	for i, s := range r.trips {
		t.Logf("  %d: %.110s", i+1, s)
		if from < 0 && strings.Contains(s, "accounts") && (strings.Contains(s, "FOR UPDATE") || strings.Contains(s, "FOR NO KEY UPDATE")) {
			from = i
		}
	}
	if from >= 0 {
		locked = len(r.trips) - from
	}
	return len(r.trips), locked
}

// TestRoundTrips counts the round trips of the service's two hot writes on
// PostgreSQL, with the statement cache warm: every one is latency that the
// unit holds its locks (the caller's key, then its account's row) through.
func TestRoundTrips(t *testing.T) {
	ctx := t.Context()
	rt := &roundTrips{}
	st, err := postgres.OpenTuned(ctx, storetest.FreshPostgresDB(t), func(c *pgxpool.Config) {
		c.ConnConfig.Tracer = rt
		c.MaxConns = 1 // one connection: its statement cache is warm after the first call
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	svc, p, publishable := bootstrap(t, st, "acct_rt")
	create := func(name string) {
		if _, err := svc.Create(ctx, p, p.Accounts[0], apikeys.CreateInput{Name: name, Permissions: map[string][]string{"payment": {"read"}}}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	regenerate := func() {
		if _, err := svc.Regenerate(ctx, p, publishable, time.Minute); err != nil {
			t.Fatalf("Regenerate: %v", err)
		}
	}
	create("warm-up")
	regenerate()
	// Before issue 11: create 10 (8 holding the account's lock), regenerate
	// 9 (5): BEGIN alone, and the audit head read, then the event inserted,
	// then the head moved. Before issue 19: create 6 (5), regenerate 5 (2):
	// each write its own round trip. Now writes are pipelined with the next
	// statement or COMMIT, and so is the account's lock, the server sealing
	// the event: create is BEGIN with the caller's key, then the lock, the
	// name release, the key, the event and COMMIT in one batch; regenerate
	// is BEGIN with both keys (store.KeysLocker), then the key, the lock, the
	// event and COMMIT. Since migration 00011 the lock is taken by the event's
	// statement, after the key's write, in that same batch.
	for _, c := range []struct {
		op                  string
		fn                  func()
		maxTotal, maxLocked int
	}{
		{"create", func() { create("counted") }, 2, 1},
		{"regenerate", regenerate, 2, 1},
	} {
		total, locked := rt.count(t, c.fn)
		t.Logf("%s: %d round trips, %d holding the account's lock", c.op, total, locked)
		if total > c.maxTotal || locked > c.maxLocked {
			t.Errorf("%s: %d round trips (%d holding the account's lock), want at most %d (%d)", c.op, total, locked, c.maxTotal, c.maxLocked)
		}
	}
}

// bootstrap provisions account on st's sandbox through the service and
// returns the service, its managed secret key as a principal, and the id of
// its managed publishable key (which the secret key may regenerate).
func bootstrap(t testing.TB, st *postgres.Store, account string) (*apikeys.Service, *auth.Principal, string) {
	t.Helper()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := perm.LoadCatalog(doc)
	if err != nil {
		t.Fatal(err)
	}
	svc := apikeys.New(st, catalog, apikeys.Options{MaxActiveKeys: 1 << 20}) // benchmarks create past the default cap
	issued, err := svc.Bootstrap(context.Background(), account, []apikey.Mode{apikey.Sandbox})
	if err != nil {
		t.Fatal(err)
	}
	var secret apikeys.Issued
	var publishable string
	for _, i := range issued {
		if i.Key.Type == apikey.TypeSecret {
			secret = i
		} else {
			publishable = i.Key.ID
		}
	}
	return svc, &auth.Principal{Kind: keys.KindSecret, Mode: apikey.Sandbox, Subject: secret.Key.ID, KeyID: secret.Key.ID,
		Accounts: []string{account}, Permissions: perm.FromMap(secret.Key.Permissions), SecretHash: keys.Hash(secret.Secret)}, publishable
}

// TestPoolSize: DefaultMaxConns unless the URL's pool_max_conns says otherwise.
func TestPoolSize(t *testing.T) {
	base := storetest.FreshPostgresDB(t)
	with := base + " pool_max_conns=5"
	if strings.HasPrefix(base, "postgres://") || strings.HasPrefix(base, "postgresql://") {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		q := u.Query()
		q.Set("pool_max_conns", "5")
		u.RawQuery = q.Encode()
		with = u.String()
	}
	for u, want := range map[string]int32{base: postgres.DefaultMaxConns, with: 5} {
		st := open(t, u)
		if got := st.Pool().Config().MaxConns; got != want {
			t.Errorf("MaxConns = %d, want %d", got, want)
		}
		_ = st.Close() // only read
	}
}
