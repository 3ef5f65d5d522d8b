package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// dropResponses loses the first n answers: the server handled the request,
// the client sees a connection reset (a lost response).
type dropResponses struct {
	rt      http.RoundTripper
	mu      sync.Mutex
	n       int
	dropped [][]byte // the bodies the client never saw
	calls   int
}

func (d *dropResponses) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := d.rt.RoundTrip(r)
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls++
	if err == nil && len(d.dropped) < d.n {
		b, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		d.dropped = append(d.dropped, b)
		return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return res, err
}

// retryingClient retries (as the default client does) through a transport
// that loses the first n answers.
func retryingClient(t *testing.T, env *testenv.Env, token string, n int) (*client.Client, *dropResponses) {
	t.Helper()
	d := &dropResponses{rt: http.DefaultTransport, n: n}
	c, err := client.New(env.URL, token, client.WithHTTPClient(&http.Client{Transport: d, Timeout: 10 * time.Second}), client.WithRetries(3, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c, d
}

func wantCode(t *testing.T, what string, err error, status int, code client.ErrorCode) *client.Error {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) || ae.StatusCode != status || ae.Code != code {
		t.Fatalf("%s: %v; want %d (%d)", what, err, status, code)
	}
	return ae
}

func auditCount(t *testing.T, env *testenv.Env, m testenv.Managed, action client.AuditAction, keyID string) int {
	t.Helper()
	n := 0
	for _, e := range auditAll(t, env.Client(m.Secret), acct) {
		if e.Action == action && e.KeyID == keyID {
			n++
		}
	}
	return n
}

// A create and a regenerate whose answers are lost are retried by the
// client with the same Idempotency-Key: the retry gets the key and secret
// the first attempt made; nothing ran twice.
func TestIdempotentLostResponseRetry(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c, d := retryingClient(t, env, m.Secret, 1)

		k, err := c.CreateAPIKey(ctx, acct, newKeyReq("lost answer", client.Permissions{"payment": {"read"}}))
		if err != nil {
			t.Fatalf("create through a lost answer: %v", err)
		}
		if d.calls != 2 || len(d.dropped) != 1 {
			t.Fatalf("%d calls, %d dropped; want a lost answer and one retry", d.calls, len(d.dropped))
		}
		if !bytes.Contains(d.dropped[0], []byte(k.Key)) {
			t.Fatalf("the retry's secret is not the one the lost answer carried")
		}
		keys := listAll(t, env.Client(m.Secret), oapi.ListAPIKeysParams{AccountID: acct})
		named := 0
		for _, v := range keys {
			if v.Name == "lost answer" {
				named++
			}
		}
		if named != 1 {
			t.Fatalf("%d keys named %q; want 1", named, "lost answer")
		}
		// It authenticates (403: it holds no read permission; 401 if unknown).
		if _, err := env.Client(k.Key).GetAPIKey(ctx, k.ID); !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("the replayed secret does not authenticate: %v", err)
		}

		c2, d2 := retryingClient(t, env, m.Secret, 1)
		r, err := c2.RegenerateAPIKey(ctx, m.PublishableID)
		if err != nil {
			t.Fatalf("regenerate through a lost answer: %v", err)
		}
		if !bytes.Contains(d2.dropped[0], []byte(r.Key)) {
			t.Fatalf("the regenerate's retry got another secret than the first attempt")
		}
		if n := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); n != 1 {
			t.Fatalf("%d regenerate events; want 1", n)
		}
		if _, err := env.Client(r.Key).GetAPIKey(ctx, m.PublishableID); err != nil && !errors.Is(err, client.ErrForbidden) {
			t.Fatalf("the replayed publishable secret does not authenticate: %v", err)
		}
	})
}

// The replay is marked, carries the first answer byte for byte, and a
// different request under the same key is 42207.
func TestIdempotentReplayAndMismatch(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		raw := env.Client(m.Secret).Raw()
		key := "replay-" + strings.Repeat("x", 10)
		params := &oapi.CreateAPIKeyParams{AccountID: acct, IdempotencyKey: &key}
		body := newKeyReq("replayed", client.Permissions{"payment": {"read"}})
		first, err := raw.CreateAPIKeyWithBodyWithResponse(ctx, params, "application/json", jsonReader(t, body))
		if err != nil || first.StatusCode() != http.StatusCreated {
			t.Fatalf("create: %v %d %s", err, first.StatusCode(), first.Body)
		}
		if h := first.HTTPResponse.Header.Get("Idempotent-Replayed"); h != "" {
			t.Fatalf("first answer marked replayed: %q", h)
		}
		again, err := raw.CreateAPIKeyWithBodyWithResponse(ctx, params, "application/json", jsonReader(t, body))
		if err != nil || again.StatusCode() != http.StatusCreated {
			t.Fatalf("replay: %v %d %s", err, again.StatusCode(), again.Body)
		}
		if again.HTTPResponse.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("replay not marked")
		}
		if !bytes.Equal(bytes.TrimSpace(first.Body), bytes.TrimSpace(again.Body)) {
			t.Fatalf("replay differs:\n%s\n%s", first.Body, again.Body)
		}
		// Same key, another body; another account; another credential.
		other := newKeyReq("replayed too", client.Permissions{"payment": {"read"}})
		_, err = env.Client(m.Secret).CreateAPIKey(ctx, acct, other, client.WithIdempotencyKey(key))
		_ = wantCode(t, "another body", err, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused)
		jwt := env.JWT.Sign(t, env.JWT.Claims("alice", []string{acct}, []string{"account:api:key:create", "payment:read"}, "test"))
		_, err = env.Client(jwt).CreateAPIKey(ctx, acct, body, client.WithIdempotencyKey(key))
		_ = wantCode(t, "another credential", err, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused)
		// Regenerate: same key on another key id is another request.
		_, err = env.Client(m.Secret).RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("rot-1"))
		if err != nil {
			t.Fatal(err)
		}
		_, err = env.Client(m.Secret).RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("rot-1"), client.WithGracePeriod(time.Hour))
		_ = wantCode(t, "regenerate with another body", err, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused)
		// A failed request is not kept: fixing nothing, it fails again
		// (not 42207, not a replay); a new key works.
		dup := newKeyReq("replayed", client.Permissions{"payment": {"read"}})
		_, err = env.Client(m.Secret).CreateAPIKey(ctx, acct, dup, client.WithIdempotencyKey("dup-1"))
		_ = wantCode(t, "duplicate name", err, http.StatusConflict, client.CodeDuplicateName)
		_, err = env.Client(m.Secret).CreateAPIKey(ctx, acct, dup, client.WithIdempotencyKey("dup-1"))
		_ = wantCode(t, "duplicate name again", err, http.StatusConflict, client.CodeDuplicateName)
	})
}

// Concurrent duplicates run once: one execution, the others 409 (40904) or
// the replay of that one execution.
func TestIdempotentConcurrentDuplicates(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		const n = 16
		secrets := make([]string, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				c := env.Client(m.Secret) // no retries: every answer seen
				<-start
				k, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("same-rotation"))
				if err == nil {
					secrets[i] = k.Key
				}
				errs[i] = err
			}(i)
		}
		close(start)
		wg.Wait()
		distinct := map[string]bool{}
		for i := range n {
			if errs[i] != nil {
				ae := wantCode(t, "concurrent duplicate", errs[i], http.StatusConflict, client.CodeIdempotencyConflict)
				if ae.Details["replayable"] != true {
					t.Fatalf("in-progress conflict says replayable %v", ae.Details["replayable"])
				}
				continue
			}
			distinct[secrets[i]] = true
		}
		if len(distinct) != 1 {
			t.Fatalf("%d distinct secrets; want exactly one execution", len(distinct))
		}
		if got := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); got != 1 {
			t.Fatalf("%d regenerate events; want 1", got)
		}
	})
}

// After 24 hours (the service clock) the key starts a new execution, and
// the expired record is gone.
func TestIdempotencyExpiresAfter24h(t *testing.T) {
	eachIdemStore(t, func(t *testing.T, cfg testenv.Config, url string) {
		env := newIdemEnv(t, cfg, url)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		first, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("daily"))
		if err != nil {
			t.Fatal(err)
		}
		env.Clock.Advance(23 * time.Hour)
		replay, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("daily"))
		if err != nil || replay.Key != first.Key {
			t.Fatalf("within 24 h: %v; want the replay", err)
		}
		env.Clock.Advance(time.Hour + time.Second)
		second, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("daily"))
		if err != nil {
			t.Fatal(err)
		}
		if second.Key == first.Key {
			t.Fatalf("after 24 h the key replayed instead of running again")
		}
		if got := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); got != 2 {
			t.Fatalf("%d regenerate events; want 2", got)
		}
		// Another key's claim sweeps expired records: "daily" (now 0 s old)
		// stays, one expired a day later goes.
		if _, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("other")); err != nil {
			t.Fatal(err)
		}
		if n := idemRows(t, env); n != 2 {
			t.Fatalf("%d records; want 2", n)
		}
		env.Clock.Advance(25 * time.Hour)
		if _, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("third")); err != nil {
			t.Fatal(err)
		}
		if n := idemRows(t, env); n != 1 {
			t.Fatalf("%d records after the sweep; want 1 (the new claim)", n)
		}
	})
}

// rawBodies reads the sandbox idempotency table's bodies behind the
// store's back.
func rawBodies(t *testing.T, env *testenv.Env) [][]byte {
	t.Helper()
	var out [][]byte
	if s, ok := env.Store.(*sqlite.Store); ok {
		rows, err := s.DB(apikey.Sandbox).QueryContext(ctx, `SELECT body FROM idempotency_records`)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = rows.Close() }()
		for rows.Next() {
			var b []byte
			if err := rows.Scan(&b); err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	url := pgURLs[env]
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(ctx) }()
	rows, err := conn.Query(ctx, `SELECT body FROM hsrcpay_test.idempotency_records`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func idemRows(t *testing.T, env *testenv.Env) int { return len(rawBodies(t, env)) }

// pgURLs remembers each PostgreSQL environment's database, for raw reads.
var (
	pgURLs   = map[*testenv.Env]string{}
	pgURLsMu sync.Mutex
)

// eachIdemStore is eachStore, remembering the PostgreSQL URL.
func eachIdemStore(t *testing.T, f func(t *testing.T, cfg testenv.Config, url string)) {
	t.Run("sqlite", func(t *testing.T) { f(t, testenv.Config{}, "") })
	t.Run("postgres", func(t *testing.T) {
		url := storetest.FreshPostgresDB(t)
		f(t, testenv.Config{Store: openPostgres(t, url)}, url)
	})
}

func newIdemEnv(t *testing.T, cfg testenv.Config, url string) *testenv.Env {
	t.Helper()
	env := testenv.New(t, cfg)
	if url != "" {
		pgURLsMu.Lock()
		pgURLs[env] = url
		pgURLsMu.Unlock()
	}
	return env
}

// The kept answer is sealed: the raw table holds no secret, no name, no
// JSON; a server with another key cannot open it and says so (409
// replayable false), without running the request again.
func TestIdempotencyStoredEncrypted(t *testing.T) {
	eachIdemStore(t, func(t *testing.T, cfg testenv.Config, url string) {
		env := newIdemEnv(t, cfg, url)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		k, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("sealed-name", client.Permissions{"payment": {"read"}}), client.WithIdempotencyKey("seal"))
		if err != nil {
			t.Fatal(err)
		}
		bodies := rawBodies(t, env)
		if len(bodies) != 1 || len(bodies[0]) == 0 {
			t.Fatalf("%d records; want one with a body", len(bodies))
		}
		for _, plain := range []string{k.Key, k.Key[len(k.Key)-12:], "sealed-name", `"key"`, k.ID} {
			if bytes.Contains(bodies[0], []byte(plain)) {
				t.Fatalf("the stored answer holds %q in the clear", plain)
			}
		}
		// A replica with another key file: refused clearly, not replayed,
		// not run again.
		other := cfg
		other.IdempotencyKey = bytes.Repeat([]byte{7}, 32)
		if url != "" {
			other.Store = openPostgres(t, url)
		} else {
			other.Store = env.Store
		}
		wrong := testenv.New(t, other)
		_, err = wrong.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("sealed-name", client.Permissions{"payment": {"read"}}), client.WithIdempotencyKey("seal"))
		ae := wantCode(t, "replay with another key", err, http.StatusConflict, client.CodeIdempotencyConflict)
		if ae.Details["replayable"] != false {
			t.Fatalf("details %v; want replayable false", ae.Details)
		}
		// The right key still replays.
		again, err := env.Client(m.Secret).CreateAPIKey(ctx, acct, newKeyReq("sealed-name", client.Permissions{"payment": {"read"}}), client.WithIdempotencyKey("seal"))
		if err != nil || again.Key != k.Key {
			t.Fatalf("replay with the right key: %v", err)
		}
	})
}

// Two replicas on one PostgreSQL, sharing the key file: a request whose
// answer was lost on one is replayed by the other.
func TestIdempotencyAcrossReplicas(t *testing.T) {
	url := storetest.FreshPostgresDB(t)
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url)})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), IdempotencyKey: a.IdempotencyKey})
	m := a.Bootstrap(acct)[apikey.Sandbox]
	d := &dropResponses{rt: http.DefaultTransport, n: 1}
	ca, err := client.New(a.URL, m.Secret, client.WithHTTPClient(&http.Client{Transport: d}), client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	// The answer is lost; the client's retry goes to the other replica.
	if _, err := ca.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("across")); err == nil || len(d.dropped) != 1 {
		t.Fatalf("no answer lost: %v", err)
	}
	r, err := b.Client(m.Secret).RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("across"))
	if err != nil {
		t.Fatalf("retry on replica B: %v", err)
	}
	if !bytes.Contains(d.dropped[0], []byte(r.Key)) {
		t.Fatalf("replica B ran the rotation again")
	}
	if got := auditCount(t, a, m, client.AuditRegenerate, m.PublishableID); got != 1 {
		t.Fatalf("%d regenerate events; want 1", got)
	}
}

// Without a key to seal answers, a request with an Idempotency-Key still
// runs at most once: its retry is 409 (replayable false), not a second key.
func TestIdempotencyWithoutKeyFile(t *testing.T) {
	env := testenv.New(t, testenv.Config{NoIdempotencyKey: true})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	c := env.Client(m.Secret)
	if _, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("nokey")); err != nil {
		t.Fatal(err)
	}
	_, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("nokey"))
	ae := wantCode(t, "retry without a key file", err, http.StatusConflict, client.CodeIdempotencyConflict)
	if ae.Details["replayable"] != false {
		t.Fatalf("details %v; want replayable false", ae.Details)
	}
	if got := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); got != 1 {
		t.Fatalf("%d regenerate events; want 1", got)
	}
	if b := rawBodies(t, env); len(b) != 1 || b[0] != nil {
		t.Fatalf("without a key the record must keep no body: %q", b)
	}
}

// A malformed Idempotency-Key is a validation error (40000), before any
// record: too long, not printable ASCII, or given twice.
func TestIdempotencyKeyValidated(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	for name, values := range map[string][]string{
		"256 characters": {strings.Repeat("k", 256)},
		"a tab":          {"a\tb"},
		"not ASCII":      {"clé"},
		"twice":          {"one", "two"},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/api-keys/"+m.PublishableID+"/regenerate", nil)
		req.Header.Set("Authorization", "Bearer "+m.Secret)
		for _, v := range values {
			req.Header.Add("Idempotency-Key", v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest || !bytes.Contains(body, []byte(`"code":40000`)) {
			t.Errorf("%s: %d %s; want 400 (40000)", name, res.StatusCode, body)
		}
	}
	if n := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); n != 0 {
		t.Fatalf("%d rotations from malformed requests", n)
	}
	if n := idemRows(t, env); n != 0 {
		t.Fatalf("%d records from malformed requests", n)
	}
}

// faultyIdemStore fails CompleteIdempotency (and, when told, the release
// that follows), to show that a key change never commits without its kept
// answer, and that a claim left behind lapses with its lease.
type faultyIdemStore struct {
	store.Store
	failComplete, failRelease atomic.Bool
}

func (s *faultyIdemStore) Repo(m apikey.Mode) store.Repository {
	return faultyIdemRepo{Repository: s.Store.Repo(m), s: s}
}

type faultyIdemRepo struct {
	store.Repository
	s *faultyIdemStore
}

func (r faultyIdemRepo) InTx(ctx context.Context, fn func(store.Tx) error) error {
	return r.Repository.InTx(ctx, func(tx store.Tx) error { return fn(faultyIdemTx{Tx: tx, s: r.s}) })
}

type faultyIdemTx struct {
	store.Tx
	s *faultyIdemStore
}

var errInjected = errors.New("injected failure")

func (t faultyIdemTx) CompleteIdempotency(ctx context.Context, account, key, id string, status int, body []byte) error {
	if t.s.failComplete.Load() {
		return errInjected
	}
	return t.Tx.CompleteIdempotency(ctx, account, key, id, status, body)
}

func (t faultyIdemTx) ReleaseIdempotency(ctx context.Context, account, key, id string) error {
	if t.s.failRelease.Load() {
		return errInjected
	}
	return t.Tx.ReleaseIdempotency(ctx, account, key, id)
}

func TestIdempotencyAnswerCommitsWithTheChange(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		if cfg.Store == nil {
			st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
			if err != nil {
				t.Fatal(err)
			}
			cfg.Store = st
		}
		fs := &faultyIdemStore{Store: cfg.Store}
		cfg.Store = fs
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		req := newKeyReq("atomic", client.Permissions{"payment": {"read"}})

		// The answer cannot be kept: the create rolls back with it (500),
		// and its claim is released, so the retry runs it, once.
		fs.failComplete.Store(true)
		_, err := c.CreateAPIKey(ctx, acct, req, client.WithIdempotencyKey("atomic-1"))
		_ = wantCode(t, "create whose answer cannot be kept", err, http.StatusInternalServerError, client.CodeInternal)
		if n := len(listAll(t, c, oapi.ListAPIKeysParams{AccountID: acct, Managed: ptr(false)})); n != 0 {
			t.Fatalf("%d custom keys after a rolled-back create", n)
		}
		fs.failComplete.Store(false)
		k, err := c.CreateAPIKey(ctx, acct, req, client.WithIdempotencyKey("atomic-1"))
		if err != nil {
			t.Fatalf("retry after the rollback: %v", err)
		}

		// A server that died mid-request: its claim stays in progress (no
		// completion, no release). Within the lease the retry is 409; after
		// it the same request runs (once); another request never does.
		fs.failComplete.Store(true)
		fs.failRelease.Store(true)
		_, err = c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("crashed"))
		_ = wantCode(t, "regenerate that dies", err, http.StatusInternalServerError, client.CodeInternal)
		fs.failComplete.Store(false)
		fs.failRelease.Store(false)
		_, err = c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("crashed"))
		_ = wantCode(t, "retry within the lease", err, http.StatusConflict, client.CodeIdempotencyConflict)
		env.Clock.Advance(61 * time.Second)
		_, err = c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("crashed"), client.WithGracePeriod(time.Hour))
		_ = wantCode(t, "another request after the lease", err, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused)
		r1, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("crashed"))
		if err != nil {
			t.Fatalf("the same request after the lease: %v", err)
		}
		r2, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey("crashed"))
		if err != nil || r2.Key != r1.Key {
			t.Fatalf("replay after the re-claim: %v", err)
		}
		if n := auditCount(t, env, m, client.AuditRegenerate, m.PublishableID); n != 1 {
			t.Fatalf("%d regenerate events; want 1", n)
		}
		if n := auditCount(t, env, m, client.AuditCreate, k.ID); n != 1 {
			t.Fatalf("%d create events; want 1", n)
		}
	})
}

// Without a key the server says at start what it does instead.
func TestIdempotencyWithoutKeyIsLoggedAtStart(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	h := slog.NewJSONHandler(lockedWriter{&buf, &mu}, nil)
	testenv.New(t, testenv.Config{NoIdempotencyKey: true, Logger: slog.New(h)})
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(buf.String(), "idempotency: no key to seal stored answers") || !strings.Contains(buf.String(), `"level":"WARN"`) {
		t.Fatalf("no warning at start:\n%s", buf.String())
	}
	buf.Reset()
	mu.Unlock()
	testenv.New(t, testenv.Config{Logger: slog.New(h)})
	mu.Lock()
	if strings.Contains(buf.String(), "idempotency") {
		t.Fatalf("a warning with a key:\n%s", buf.String())
	}
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Issue 17: a replay is an execution. A stored answer goes only to the
// exact credential that made the request, and only if that credential may,
// now, do what the request did. Every request of these tests goes through
// idemPost, so that two requests differ only in what the test changes (a
// body the client library shapes differently would be 42207 for the wrong
// reason).

// idemPost sends POST env.URL+path as token with Idempotency-Key key and a
// JSON body (nil: none), and returns the status, headers and body.
func idemPost(t *testing.T, env *testenv.Env, token, path, key string, body []byte) (int, http.Header, []byte) {
	t.Helper()
	return rawExchange(t, env, http.MethodPost, path, token, key, body)
}

// wantRefused asserts an answer is the error status/code and carries no
// secret (neither the stored one nor any other).
func wantRefused(t *testing.T, what string, status int, body []byte, wantStatus int, code client.ErrorCode, secret string) {
	t.Helper()
	if status != wantStatus || !bytes.Contains(body, []byte(fmt.Sprintf(`"code":%d`, code))) {
		t.Fatalf("%s: %d %s; want %d (%d)", what, status, body, wantStatus, code)
	}
	if bytes.Contains(body, []byte(secret)) || bytes.Contains(body, []byte("sk_")) {
		t.Fatalf("%s: the refusal carries a secret: %s", what, body)
	}
}

// wantReplay asserts an answer is the stored one: status, marked, same bytes.
func wantReplay(t *testing.T, what string, status int, h http.Header, body []byte, wantStatus int, first []byte) {
	t.Helper()
	if status != wantStatus || h.Get("Idempotent-Replayed") != "true" || !bytes.Equal(bytes.TrimSpace(body), bytes.TrimSpace(first)) {
		t.Fatalf("%s: %d replayed=%q %s; want %d, the stored answer", what, status, h.Get("Idempotent-Replayed"), body, wantStatus)
	}
}

func secretOf(t *testing.T, body []byte) (id, secret string) {
	t.Helper()
	var env struct {
		Data struct {
			ID  string `json:"id"`
			Key string `json:"key"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || env.Data.Key == "" {
		t.Fatalf("no secret in %s: %v", body, err)
	}
	return env.Data.ID, env.Data.Key
}

func permissionList(p client.Permissions) []string {
	var out []string
	for res, actions := range p {
		for _, a := range actions {
			out = append(out, res+":"+a)
		}
	}
	return out
}

// (a) A down-scoped JWT of the same subject (only account:api:key:update)
// replaying a full-grant JWT's rotation of the managed secret key gets 42207
// and no secret, as does any token differing in grants or token id; the
// original token (even re-signed with another exp) gets its replay.
func TestIdempotentReplayRegenerateNeedsTheExactJWT(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		fullClaims := env.JWT.Claims("ops", []string{acct}, permissionList(everyPermission), "test")
		fullClaims.ID = "session-1"
		full := env.JWT.Sign(t, fullClaims)
		weak := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{"account:api:key:update"}, "test"))
		path := "/api-keys/" + m.SecretID + "/regenerate"

		st, _, first := idemPost(t, env, full, path, "rotate-managed", nil)
		if st != http.StatusOK {
			t.Fatalf("full-grant regenerate: %d %s", st, first)
		}
		_, secret := secretOf(t, first)
		// Directly, the weak token is refused (and rotates nothing).
		st, _, b := idemPost(t, env, weak, path, "weak-direct", nil)
		wantRefused(t, "the weak token directly", st, b, http.StatusForbidden, client.CodePrivilegeEscalation, secret)
		// Its replay is another request: no secret.
		st, _, b = idemPost(t, env, weak, path, "rotate-managed", nil)
		wantRefused(t, "the weak token's replay", st, b, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused, secret)
		// So is every token that is not exactly the original: same grants
		// with another jti or none, another issuer-side account list.
		other := *fullClaims
		other.ID = "session-2"
		noJTI := *fullClaims
		noJTI.ID = ""
		moreAccounts := *fullClaims
		moreAccounts.Accounts = []string{acct, "acct_other"}
		for what, c := range map[string]*auth.Claims{"another jti": &other, "no jti": &noJTI, "more accounts": &moreAccounts} {
			st, _, b = idemPost(t, env, env.JWT.Sign(t, c), path, "rotate-managed", nil)
			wantRefused(t, what, st, b, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused, secret)
		}
		// (d) The original token gets its answer; so does the same token
		// re-issued with another expiry (exp is not part of the credential),
		// and with its lists in another order.
		st, h, b := idemPost(t, env, full, path, "rotate-managed", nil)
		wantReplay(t, "the original token", st, h, b, http.StatusOK, first)
		reissued := *fullClaims
		reissued.ExpiresAt = jwt.NewNumericDate(time.Now().Add(2 * time.Hour))
		perms := slices.Clone(reissued.Permissions)
		slices.Reverse(perms)
		reissued.Permissions = perms
		st, h, b = idemPost(t, env, env.JWT.Sign(t, &reissued), path, "rotate-managed", nil)
		wantReplay(t, "the original token re-issued", st, h, b, http.StatusOK, first)
		// One rotation in all.
		all := mustCreate(t, env.Client(secret), newKeyReq("auditor", client.Permissions{"account:audit": {"read"}}))
		n := 0
		for _, e := range auditAll(t, env.Client(all.Key), acct) {
			if e.Action == client.AuditRegenerate && e.KeyID == m.SecretID {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d rotations of the managed secret; want 1", n)
		}
	})
}

// (b) A create-only JWT of the same subject replaying a stronger JWT's
// create gets 42207 and no secret; the stronger one still gets its replay.
func TestIdempotentReplayCreateNeedsTheExactJWT(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		env.Bootstrap(acct)
		strong := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{"account:api:key:create", "payment:create", "refund:create"}, "test"))
		weak := env.JWT.Sign(t, env.JWT.Claims("ops", []string{acct}, []string{"account:api:key:create"}, "test"))
		path := "/api-keys/?account_id=" + acct
		body := []byte(`{"name":"payments","permissions":{"payment":["create"],"refund":["create"]}}`)

		st, _, first := idemPost(t, env, strong, path, "make-payments-key", body)
		if st != http.StatusCreated {
			t.Fatalf("strong create: %d %s", st, first)
		}
		_, secret := secretOf(t, first)
		st, _, b := idemPost(t, env, weak, path, "weak-direct", body)
		wantRefused(t, "the create-only token directly", st, b, http.StatusForbidden, client.CodePrivilegeEscalation, secret)
		st, _, b = idemPost(t, env, weak, path, "make-payments-key", body)
		wantRefused(t, "the create-only token's replay", st, b, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused, secret)
		st, h, b := idemPost(t, env, strong, path, "make-payments-key", body)
		wantReplay(t, "the strong token", st, h, b, http.StatusCreated, first)
	})
}

// (c) The exact key credential, once it can no longer do what it did, gets
// the refusal a fresh request of it would get, not the stored secret:
// disabled or deleted (401), or made to expire before the key it created
// (the life rule, 42203) or rotated (40305).
func TestIdempotentReplayRefusedOnceTheCredentialCannot(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		admin := env.Client(m.Secret)
		path := "/api-keys/?account_id=" + acct
		creator := mustCreate(t, admin, newKeyReq("creator", client.Permissions{"account:api:key": {"create"}, "payment": {"read"}}))
		body := []byte(`{"name":"reader","permissions":{"payment":["read"]}}`)
		st, _, first := idemPost(t, env, creator.Key, path, "make-reader", body)
		if st != http.StatusCreated {
			t.Fatalf("create: %d %s", st, first)
		}
		_, secret := secretOf(t, first)
		// (d) for a key: the same secret gets its replay.
		st, h, b := idemPost(t, env, creator.Key, path, "make-reader", body)
		wantReplay(t, "the creator", st, h, b, http.StatusCreated, first)

		// Disabled: 401; switched back on, the replay is its again.
		inactive := client.UpdateStatus("INACTIVE")
		active := client.UpdateStatus("ACTIVE")
		if _, err := admin.UpdateAPIKey(ctx, creator.ID, client.UpdateAPIKeyRequest{Status: &inactive}); err != nil {
			t.Fatal(err)
		}
		st, _, b = idemPost(t, env, creator.Key, path, "make-reader", body)
		wantRefused(t, "the disabled creator", st, b, http.StatusUnauthorized, client.CodeInvalidCredentials, secret)
		if _, err := admin.UpdateAPIKey(ctx, creator.ID, client.UpdateAPIKeyRequest{Status: &active}); err != nil {
			t.Fatal(err)
		}
		st, h, b = idemPost(t, env, creator.Key, path, "make-reader", body)
		wantReplay(t, "the creator switched back on", st, h, b, http.StatusCreated, first)

		// Made to expire before the key it created (which never expires):
		// a fresh create of a key outliving it is 42203, and so is the replay.
		soon := env.Clock.Now().Add(time.Hour)
		if _, err := admin.UpdateAPIKey(ctx, creator.ID, client.UpdateAPIKeyRequest{ExpiresAt: &soon}); err != nil {
			t.Fatal(err)
		}
		st, _, b = idemPost(t, env, creator.Key, path, "make-reader-2", []byte(`{"name":"reader 2","permissions":{"payment":["read"]}}`))
		wantRefused(t, "a fresh create by the expiring creator", st, b, http.StatusUnprocessableEntity, client.CodeLifetimeExceedsCaller, secret)
		st, _, b = idemPost(t, env, creator.Key, path, "make-reader", body)
		wantRefused(t, "the expiring creator's replay", st, b, http.StatusUnprocessableEntity, client.CodeLifetimeExceedsCaller, secret)

		// Regenerate: a key holding every permission rotates the managed
		// publishable key, then is made to expire: 40305, as a fresh rotation.
		rotator := mustCreate(t, admin, newKeyReq("rotator", everyPermission))
		rpath := "/api-keys/" + m.PublishableID + "/regenerate"
		st, _, rfirst := idemPost(t, env, rotator.Key, rpath, "rotate-pk", nil)
		if st != http.StatusOK {
			t.Fatalf("regenerate: %d %s", st, rfirst)
		}
		_, pk := secretOf(t, rfirst)
		st, h, b = idemPost(t, env, rotator.Key, rpath, "rotate-pk", nil)
		wantReplay(t, "the rotator", st, h, b, http.StatusOK, rfirst)
		if _, err := admin.UpdateAPIKey(ctx, rotator.ID, client.UpdateAPIKeyRequest{ExpiresAt: &soon}); err != nil {
			t.Fatal(err)
		}
		st, _, b = idemPost(t, env, rotator.Key, rpath, "rotate-pk", nil)
		wantRefused(t, "the expiring rotator's replay", st, b, http.StatusForbidden, client.CodeLifetimeEscalation, pk)

		// Expired, then deleted: 401 (40102, then 40101).
		env.Clock.Advance(2 * time.Hour)
		st, _, b = idemPost(t, env, creator.Key, path, "make-reader", body)
		wantRefused(t, "the expired creator", st, b, http.StatusUnauthorized, client.CodeExpiredCredentials, secret)
		if _, err := admin.DeleteAPIKey(ctx, rotator.ID); err != nil {
			t.Fatal(err)
		}
		st, _, b = idemPost(t, env, rotator.Key, rpath, "rotate-pk", nil)
		wantRefused(t, "the deleted rotator", st, b, http.StatusUnauthorized, client.CodeInvalidCredentials, pk)
	})
}

// (c) behind a cache: replica A still holds the creator's key as it was
// when B disabled it (no Redis between them, so A's credential cache keeps
// it for its TTL and authentication passes). The replay re-reads the
// credential in its own unit of work and refuses it, 401, as a fresh write
// on A would.
func TestIdempotentReplayRechecksACachedCredential(t *testing.T) {
	eachIdemStore(t, func(t *testing.T, cfg testenv.Config, url string) {
		cfg.CredentialCacheTTL = time.Hour
		a := newIdemEnv(t, cfg, url)
		other := cfg
		other.IdempotencyKey = a.IdempotencyKey
		if url != "" {
			other.Store = openPostgres(t, url)
		} else {
			other.Store = a.Store
		}
		b := testenv.New(t, other)
		m := a.Bootstrap(acct)[apikey.Sandbox]
		creator := mustCreate(t, a.Client(m.Secret), newKeyReq("creator", client.Permissions{"account:api:key": {"create"}, "payment": {"read"}}))
		path := "/api-keys/?account_id=" + acct
		body := []byte(`{"name":"reader","permissions":{"payment":["read"]}}`)
		st, _, first := idemPost(t, a, creator.Key, path, "cached", body)
		if st != http.StatusCreated {
			t.Fatalf("create on A: %d %s", st, first)
		}
		_, secret := secretOf(t, first)
		inactive := client.UpdateStatus("INACTIVE")
		if _, err := b.Client(m.Secret).UpdateAPIKey(ctx, creator.ID, client.UpdateAPIKeyRequest{Status: &inactive}); err != nil {
			t.Fatal(err)
		}
		st, _, got := idemPost(t, a, creator.Key, path, "cached", body)
		wantRefused(t, "the replay on A of a key B disabled", st, got, http.StatusUnauthorized, client.CodeInvalidCredentials, secret)
	})
}

// (e) Another key of the same account, with the same Idempotency-Key and
// body, is another request: 42207, no secret.
func TestIdempotentReplayAnotherKeyOfTheAccount(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		perms := client.Permissions{"account:api:key": {"create"}, "payment": {"read"}}
		one := mustCreate(t, env.Client(m.Secret), newKeyReq("one", perms))
		two := mustCreate(t, env.Client(m.Secret), newKeyReq("two", perms))
		path := "/api-keys/?account_id=" + acct
		body := []byte(`{"name":"reader","permissions":{"payment":["read"]}}`)
		st, _, first := idemPost(t, env, one.Key, path, "shared", body)
		if st != http.StatusCreated {
			t.Fatalf("create: %d %s", st, first)
		}
		_, secret := secretOf(t, first)
		st, _, b := idemPost(t, env, two.Key, path, "shared", body)
		wantRefused(t, "another key's replay", st, b, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused, secret)
		// Nor does the managed secret, which holds more, get it.
		st, _, b = idemPost(t, env, m.Secret, path, "shared", body)
		wantRefused(t, "the managed secret's replay", st, b, http.StatusUnprocessableEntity, client.CodeIdempotencyKeyReused, secret)
	})
}
