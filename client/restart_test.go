package client_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// A server restart under load, through the client's own retries: creates
// in flight when the server stops lose their answers (some after their key
// committed), and the ones sent while it is down find nothing listening.

// restartable is a real server (internal/testenv) on a fixed address that
// can be stopped and started again on the same address and store: each start
// is a new server.Server, as a new process would be, with the same sealing
// key for the stored answers (replicas and restarts share it).
type restartable struct {
	t    *testing.T
	cfg  testenv.Config
	addr string
	hs   *http.Server
	env  *testenv.Env
}

// keepOpen is the shared store as each server sees it: a server that stops
// does not close it; the test does, once, at its end.
type keepOpen struct{ store.Store }

func (keepOpen) Close() error { return nil }

func newRestartable(t *testing.T, st store.Store) *restartable {
	t.Helper()
	t.Cleanup(func() { _ = st.Close() }) // the checks are done: closing only frees files and connections
	key := make([]byte, server.IdempotencyKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	r := &restartable{t: t, cfg: testenv.Config{Store: keepOpen{st}, IdempotencyKey: key}, addr: "127.0.0.1:0"}
	r.start()
	return r
}

// start serves a new server on r's address (port 0 the first time).
func (r *restartable) start() {
	r.t.Helper()
	r.env = testenv.New(r.t, r.cfg)
	var (
		ln  net.Listener
		err error
	)
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = new(net.ListenConfig).Listen(context.Background(), "tcp", r.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		r.t.Fatalf("listen again on %s: %v", r.addr, err)
	}
	r.addr = ln.Addr().String()
	hs := &http.Server{Handler: r.env.Server, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }() // http.ErrServerClosed at stop
	r.hs = hs
	r.t.Cleanup(func() { _ = hs.Close() })
}

// stop closes the listener and every connection at once, as a process that
// exits does: requests in flight lose their answers, whether or not their
// unit of work committed, and new connections are refused until start.
func (r *restartable) stop() { _ = r.hs.Close() }

func (r *restartable) url() string { return "http://" + r.addr + server.BasePath }

type restartCall struct {
	req client.CreateAPIKeyRequest
	key *client.APIKey
	err error
}

// TestCreatesRideOutARestart: 8 workers create keys, each call with its own
// random Idempotency-Key, while the server is stopped for 1.5 s and started
// again on the same address and store. With the default retry budget every
// call succeeds, unless the server kept an attempt's claim after losing
// track of it (its commit cut by the stop) for longer than the budget: the
// call then fails on the 409 "still running" until the claim's lease runs
// out. With the former two counted retries (WithRetries alone) calls fail.
// Every failure is an UnresolvedError whose key, sent again (once the lease
// has run out), returns that call's key, or (two counted retries only) a
// call none of whose connections opened, which did nothing. Either way each call has exactly
// one key, whose secret the caller holds: no secret lost, no key created
// twice.
func TestCreatesRideOutARestart(t *testing.T) {
	stores := map[string]func(t *testing.T) store.Store{
		"sqlite": func(t *testing.T) store.Store {
			st, err := sqlite.Open(context.Background(), t.TempDir(), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
		"postgres": func(t *testing.T) store.Store {
			st, err := postgres.Open(context.Background(), storetest.FreshPostgresDB(t))
			if err != nil {
				t.Fatal(err)
			}
			return st
		},
	}
	// A claim the server lost track of blocks its key for the lease: within
	// the default budget only if the lease is well shorter.
	leaseFits := server.IdempotencyLease+5*time.Second <= client.DefaultRetryBudget
	for _, storeName := range []string{"sqlite", "postgres"} {
		for _, tc := range []struct {
			name    string
			opts    []client.Option
			budget  bool // retried for the default budget: failures are the exception
			retries string
		}{
			{"default budget", nil, true, "30 s budget"},
			{"two counted retries", []client.Option{client.WithRetries(2, 30*time.Second)}, false, "2 counted retries"},
		} {
			t.Run(storeName+"/"+tc.name, func(t *testing.T) {
				t.Parallel() // a resume may wait out the server's lease: wait them together
				r := newRestartable(t, stores[storeName](t))
				const account = "acct_restart"
				managed := r.env.Bootstrap(account)[apikey.Sandbox]
				calls := restartUnderLoad(t, r, managed.Secret, account, tc.opts)

				// Resume each failed call with its key, as a caller would
				// later, patient enough to see a held claim's lease out.
				c, err := client.New(r.url(), managed.Secret, client.WithRetryBudget(server.IdempotencyLease+15*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				var (
					wg                    sync.WaitGroup
					failed, held, resumed atomic.Int32
					unsent                atomic.Int32
				)
				for _, call := range calls {
					if call.err == nil {
						continue
					}
					failed.Add(1)
					var ue *client.UnresolvedError
					if !errors.As(call.err, &ue) {
						// Only a call that never reached the server (every
						// connection refused) may fail without a key: it did
						// nothing, and a new call makes its key (a key it had
						// made would take the name: 409).
						if !errors.Is(call.err, client.ErrUnavailable) || tc.budget {
							t.Errorf("%s: %v (%T), want an *UnresolvedError carrying the key", call.req.Name, call.err, call.err)
							continue
						}
						unsent.Add(1)
						wg.Go(func() {
							key, err := c.CreateAPIKey(ctx, account, call.req)
							if err != nil {
								t.Errorf("%s: a new call after one that was refused: %v", call.req.Name, err)
								return
							}
							call.key, call.err = key, nil
						})
						continue
					}
					var ae *client.Error
					if errors.As(call.err, &ae) && ae.Code == client.CodeIdempotencyConflict {
						held.Add(1)
					} else if tc.budget {
						t.Errorf("%s: %v: a 1.5 s restart outlasted the default retry budget", call.req.Name, call.err)
					}
					if tc.budget && ae != nil && ae.Code == client.CodeIdempotencyConflict && leaseFits {
						t.Errorf("%s: %v: the server's lease (%v) fits in the default budget", call.req.Name, call.err, server.IdempotencyLease)
					}
					wg.Go(func() {
						key, err := c.CreateAPIKey(ctx, account, call.req, client.WithIdempotencyKey(ue.IdempotencyKey))
						if err != nil {
							t.Errorf("%s: resuming with %q: %v", call.req.Name, ue.IdempotencyKey, err)
							return
						}
						call.key, call.err = key, nil
						resumed.Add(1)
					})
				}
				wg.Wait()
				t.Logf("%s, %s: %d calls, %d failed (%d never sent, %d on a claim held for the lease, %v), %d resumed",
					storeName, tc.retries, len(calls), failed.Load(), unsent.Load(), held.Load(), server.IdempotencyLease, resumed.Load())
				checkOneKeyPerCall(t, c, account, calls)
			})
		}
	}
}

// restartUnderLoad runs 8 workers that create keys one after the other
// until after the server, stopped 300 ms in, is back from 1.5 s down, and
// returns every call.
func restartUnderLoad(t *testing.T, r *restartable, secret, account string, opts []client.Option) []*restartCall {
	t.Helper()
	c, err := client.New(r.url(), secret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu      sync.Mutex
		calls   []*restartCall
		wg      sync.WaitGroup
		done    atomic.Bool
		started atomic.Int32 // calls begun, to stop only once calls run on the restarted server
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; !done.Load(); i++ {
				call := &restartCall{req: client.CreateAPIKeyRequest{
					Name: fmt.Sprintf("w%d-%03d", w, i), Permissions: client.Permissions{"payment": {"read"}}}}
				started.Add(1)
				call.key, call.err = c.CreateAPIKey(ctx, account, call.req)
				mu.Lock()
				calls = append(calls, call)
				mu.Unlock()
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	r.stop()
	time.Sleep(1500 * time.Millisecond)
	r.start()
	// Every worker's call that spans the restart must end, then a few more
	// calls run against the restarted server.
	for after := started.Load(); started.Load() < after+24; {
		time.Sleep(20 * time.Millisecond)
	}
	done.Store(true)
	wg.Wait()
	return calls
}

// checkOneKeyPerCall checks that the account's custom keys are exactly the
// calls' keys, one per call, and that each call holds its key's working
// secret.
func checkOneKeyPerCall(t *testing.T, c *client.Client, account string, calls []*restartCall) {
	t.Helper()
	listed, err := client.Collect(c.ListAPIKeys(ctx, account, client.ListAPIKeysOptions{Managed: client.Ptr(false), Limit: 100}))
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string][]string{}
	for _, k := range listed {
		byName[k.Name] = append(byName[k.Name], k.ID)
	}
	if len(listed) != len(calls) {
		t.Errorf("%d custom keys for %d calls", len(listed), len(calls))
	}
	for _, call := range calls {
		if call.key == nil {
			continue // reported already
		}
		ids := byName[call.req.Name]
		if len(ids) != 1 || ids[0] != call.key.ID {
			t.Errorf("%s: keys %v, want exactly the call's %s", call.req.Name, ids, call.key.ID)
			continue
		}
		v, err := c.VerifyKey(ctx, call.key.Key)
		if err != nil || !v.Valid || v.ID != call.key.ID {
			t.Errorf("%s: the secret the call returned does not authenticate as %s: %+v %v", call.req.Name, call.key.ID, v, err)
		}
	}
}
