package server_test

// Issue 18, class 3: a keyed request in flight when its server dies must not
// be stuck for a whole lease. The real binary, keyed creates in flight, kill
// -9, a restart on the same database, and every retry with the same
// Idempotency-Key must resolve (a replay, or one fresh execution) within a
// lease of the restarted server's first answer.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/server"
)

// lkCreate is one keyed create: its Idempotency-Key is also the new key's
// name (names are unique among live keys, so a second execution of one
// request would answer 409 40900, never make a second key).
type lkCreate struct {
	key  string
	body []byte
}

func lkRequest(t *testing.T, base, token string, c lkCreate, account string) *http.Request {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api-keys?account_id="+url.QueryEscape(account), bytes.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", c.key)
	return req
}

// lkDB is the store under test as the test sees it: the server's
// HSRCPAY_DATABASE_URL, extra variables, what happens at the kill, and
// counts read behind the server's back.
type lkDB struct {
	url                   string
	env                   []string
	beforeKill, afterKill func()
	count                 func(q string, args ...any) int // on the sandbox tables
	// holderDeathKnown: the store knows the killed server is gone (SQLite),
	// so no retry is ever answered 409 in_progress.
	holderDeathKnown bool
}

func TestIdempotencyKillRestartResolvesWithinLease(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the server binary")
	}
	bin := hxBuildServer(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		lkKillRestart(t, bin, lkDB{
			url:              "sqlite:" + dir,
			holderDeathKnown: true,
			count: func(q string, args ...any) int {
				return hxCountFile(t, dir, apikey.Sandbox, q, args...)
			},
		})
	})
	t.Run("postgres", func(t *testing.T) {
		direct := storetest.FreshPostgresDB(t)
		u, err := url.Parse(direct)
		if err != nil {
			t.Fatal(err)
		}
		// The server reaches PostgreSQL through a fault proxy, frozen just
		// before the kill: every worker's request is then held open inside
		// the server, wherever it was (claimed or not, inside its unit or
		// not), and dies with it.
		proxy := newFaultProxy(t, u.Host)
		u.Host = proxy.Addr
		keyFile := filepath.Join(t.TempDir(), "idempotency.key")
		if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))), 0o600); err != nil {
			t.Fatal(err)
		}
		schema := pgx.Identifier{postgres.Schemas[apikey.Sandbox]}.Sanitize()
		lkKillRestart(t, bin, lkDB{
			url: u.String(),
			env: []string{"HSRCPAY_IDEMPOTENCY_KEY_FILE=" + keyFile},
			beforeKill: func() {
				proxy.Freeze()
				time.Sleep(500 * time.Millisecond) // every worker's next request reaches the frozen store
			},
			afterKill: func() {
				// The dead server's connections reset, as its kernel would
				// have reset them without the proxy in between: PostgreSQL
				// ends their sessions and the row locks they held.
				proxy.Stop()
				proxy.Thaw()
				proxy.Start()
			},
			count: func(q string, args ...any) int {
				conn, err := pgx.Connect(ctx, direct)
				if err != nil {
					t.Fatal(err)
				}
				defer func() { _ = conn.Close(ctx) }() // only read
				q = strings.ReplaceAll(q, "FROM ", "FROM "+schema+".")
				for i := 1; strings.Contains(q, "?"); i++ {
					q = strings.Replace(q, "?", fmt.Sprintf("$%d", i), 1)
				}
				var n int
				if err := conn.QueryRow(ctx, q, args...).Scan(&n); err != nil {
					t.Fatal(err)
				}
				return n
			},
		})
	})
}

func lkKillRestart(t *testing.T, bin string, db lkDB) {
	const (
		demo    = "acct_lease_demo"
		workers = 16
	)
	httpc := &http.Client{Timeout: 60 * time.Second}
	var (
		token   string     // the workers' credential
		pending []lkCreate // unanswered at a kill
		killed  time.Time
	)
	// Load, then kill -9. A kill that happens to leave no claim in progress
	// (SQLite, rarely: every request in flight was before its claim or past
	// its commit) proves nothing about leases: the server is started and
	// killed again, up to 5 times; the requests every kill left unanswered
	// are all retried below.
	for attempt := 1; ; attempt++ {
		p1 := hxStartServerDB(t, bin, db.url, demo, db.env...)
		if token == "" {
			// A custom key, which survives the restart (demo mode rotates
			// the managed ones, and a retry must come from the credential
			// that made the request).
			res, body := hxDo(t, httpc, lkRequest(t, p1.url, p1.demoSecret, lkCreate{key: "lease-worker", //nolint:bodyclose // hxDo reads and closes the body
				body: []byte(`{"name":"lease worker","permissions":{"account:api:key":["create"]}}`)}, demo))
			var created struct{ Data struct{ Key string } }
			if err := json.Unmarshal(body, &created); res.StatusCode != 201 || err != nil || created.Data.Key == "" {
				t.Fatalf("worker key: %d %v %s", res.StatusCode, err, body)
			}
			token = created.Data.Key
		}
		var (
			mu    sync.Mutex
			unans []lkCreate
			acked int
			wg    sync.WaitGroup
		)
		for w := range workers {
			wg.Go(func() {
				for i := 0; ; i++ {
					c := lkCreate{key: fmt.Sprintf("lease-%d-%d-%d", attempt, w, i)}
					c.body = []byte(fmt.Sprintf(`{"name":%q,"permissions":{}}`, c.key))
					res, err := httpc.Do(lkRequest(t, p1.url, token, c, demo))
					if err != nil {
						mu.Lock()
						unans = append(unans, c)
						mu.Unlock()
						return
					}
					b, _ := io.ReadAll(res.Body)
					_ = res.Body.Close() // read whole
					if res.StatusCode != 201 {
						t.Errorf("create %s before the kill: %d %s", c.key, res.StatusCode, b)
						return
					}
					mu.Lock()
					acked++
					mu.Unlock()
				}
			})
		}
		time.Sleep(1500 * time.Millisecond)
		if db.beforeKill != nil {
			db.beforeKill()
		}
		if err := p1.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-p1.done
		killed = time.Now()
		wg.Wait()
		if db.afterKill != nil {
			db.afterKill()
		}
		pending = append(pending, unans...)
		inProgress := db.count(`SELECT count(*) FROM idempotency_records WHERE state = 'in_progress'`)
		t.Logf("kill %d: %d creates acknowledged, %d unanswered, %d claims left in progress", attempt, acked, len(unans), inProgress)
		if t.Failed() {
			t.FailNow()
		}
		if acked == 0 || len(unans) == 0 {
			t.Fatalf("not killed under load: %d acknowledged, %d unanswered", acked, len(unans))
		}
		if inProgress > 0 {
			break
		}
		if attempt == 5 {
			t.Fatalf("no claim was in progress at any of %d kills", attempt)
		}
	}

	p2 := hxStartServerDB(t, bin, db.url, demo, db.env...)
	answering := time.Now() // hxStartServerDB returns on its first 200 (/healthz)
	t.Logf("restarted: answering %v after the kill", answering.Sub(killed).Round(time.Millisecond))

	// Every unanswered request, retried as is (same key, body, credential)
	// until it is answered otherwise than 409 "still running".
	type outcome struct {
		after    time.Duration // from the restarted server's first answer
		status   int
		replayed bool
		conflict int // 409 40904 answers before it
		body     []byte
	}
	outcomes := make([]outcome, len(pending))
	var rw sync.WaitGroup
	for i, c := range pending {
		rw.Go(func() {
			o := &outcomes[i]
			for {
				res, b := hxDo(t, httpc, lkRequest(t, p2.url, token, c, demo)) //nolint:bodyclose // hxDo reads and closes the body
				o.after, o.status, o.body = time.Since(answering), res.StatusCode, b
				o.replayed = res.Header.Get("Idempotent-Replayed") == "true"
				if res.StatusCode != http.StatusConflict || !bytes.Contains(b, []byte(`"in_progress"`)) || o.after > 30*time.Second {
					return
				}
				o.conflict++
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	rw.Wait()
	var (
		slowest          time.Duration
		replays, fresh   int
		stuck, conflicts int
		durations        []string
	)
	for i, o := range outcomes {
		c := pending[i]
		durations = append(durations, o.after.Round(time.Millisecond).String())
		conflicts += o.conflict
		if o.conflict > 0 {
			stuck++
			slowest = max(slowest, o.after)
		}
		if o.status != 201 {
			t.Errorf("retry of %s: %d %s after %v; want 201 (its replay or its one execution)", c.key, o.status, o.body, o.after)
			continue
		}
		var got struct{ Data struct{ Name string } }
		if err := json.Unmarshal(o.body, &got); err != nil || got.Data.Name != c.key {
			t.Errorf("retry of %s answered another request's key: %s", c.key, o.body)
		}
		if o.replayed {
			replays++
		} else {
			fresh++
		}
		// The lease bound (not a speed target): a claim whose holder died
		// is taken over at once on SQLite, and lapses at most one lease
		// after the kill on PostgreSQL, which is before the restarted
		// server's first answer plus a lease. With the old 60 s lease these
		// retries were answered 409 for a minute.
		if o.conflict > 0 && db.holderDeathKnown {
			t.Errorf("retry of %s answered 409 in_progress %d times: the store knows its claim's holder died, and takes it over at once", c.key, o.conflict)
		}
		if o.conflict > 0 && o.after > server.IdempotencyLease {
			t.Errorf("retry of %s resolved %v after the restarted server answered (%d answers 409 in_progress before); want within the lease, %v",
				c.key, o.after, o.conflict, server.IdempotencyLease)
		}
		if n := db.count(`SELECT count(*) FROM api_keys WHERE account_id = ? AND name = ?`, demo, c.key); n != 1 {
			t.Errorf("request %s made %d keys, want 1", c.key, n)
		}
	}
	sort.Strings(durations)
	t.Logf("retries of %d requests in flight at the kill: %d replayed, %d executed once; %d were answered 409 in_progress first (%d answers), the last of them resolved %v after the restarted server first answered",
		len(pending), replays, fresh, stuck, conflicts, slowest.Round(time.Millisecond))
	if n := db.count(`SELECT count(*) FROM idempotency_records WHERE state = 'in_progress'`); n != 0 {
		t.Errorf("%d claims still in progress after every retry resolved", n)
	}
	if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p2.done:
	case <-time.After(20 * time.Second):
		t.Errorf("no exit within 20s of SIGTERM")
	}
}
