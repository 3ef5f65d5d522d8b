package server

// Idempotency-Key on createApiKey and regenerateApiKey (issue 13).
//
// The flow, and why each step is where it is:
//
//  1. claim (idempotency middleware, a short unit of its own): the record
//     (account, key) becomes "in progress" with a 5 s lease
//     (IdempotencyLease) that this server renews every second while the
//     request runs (keepLease), or the claim finds what an earlier request
//     left (a replay, a request still running, or a different request under
//     the same key);
//  2. the use case runs in its own unit, and completes the record with the
//     sealed (encrypted) response in THAT unit (apikeys.WithRecord): a key
//     change never commits without its replay record, and a record still in
//     progress means its change did not commit;
//  3. a request that failed releases its claim (another short unit), so a
//     retry runs it again at once; if the release itself is lost (crash),
//     the lease runs out and the same request may claim the record again.
//
// A claim whose lease ran out cannot complete a record claimed again since
// (CompleteIdempotency matches the claim's id): of two executions only one
// commits, the other rolls back with 40904.
//
// Leases die with their holder (issue 18). A claim names the store instance
// that made it (store.IdempotencyRecord.Holder, one per server process,
// logged at start). The same request retried after its server died runs
// again, or gets its answer, at once or within a lease:
//   - SQLite: a claim whose holder's process has ended is taken over at
//     once (the store knows: store.Tx.IdempotencyHolderGone); a restarted
//     server answers the retry as soon as it answers at all;
//   - PostgreSQL (replicas share the database, nobody can tell a dead
//     replica from a slow one): the lease is short, 5 s, and its holder
//     renews it every second while the request runs, so a dead holder's
//     claim lapses at most 5 s after it died, a live one's never. A renewal
//     that fails (the store unreachable for 4 s and more) may let the lease
//     lapse under a request still running: a retry then claims it again,
//     and the slower of the two rolls back with 40904 as above.
//
// A replay is an execution as far as authorization goes (issue 17): a stored
// answer carries a secret, so it goes only to the exact credential that made
// the request (the fingerprint binds it: func fingerprint), and only once
// apikeys.Service.AuthorizeReplay, the one place that decides, has re-read
// that credential and asked the policy about the answer's key as it stands
// now. Anyone else gets 42207 (another credential is another request) or
// the error a fresh request of theirs would get (401, 403, 404).
//
// The one exception (issue 18): a secret that rotated its own key is
// replaced by that rotation, so a client that lost the answer retries with
// a secret every operation refuses (401 40101, or 403 40304 in grace), and
// without grace the new secret would be lost for good. Such a retry
// (ownRotation: a replaced secret, a regenerate of its own key, one
// Idempotency-Key) is let through authentication and authorization as
// replay only (replayOnly): it reads the record without claiming it, and
// gets the stored answer when the record is complete, its fingerprint binds
// that exact secret, and apikeys.Service.AuthorizeReplay (policy.
// ReplayAuthorize) allows it; anything else, including a validation error,
// gets the refusal it gets today. It never reaches the use case, so a
// replaced secret can fetch its rotation's answer but never start one.

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/policy"
	"github.com/hsrcpay/apikeys/internal/store"
)

const (
	// IdempotencyTTL is how long an Idempotency-Key's answer is kept, per
	// account and mode (the spec's 24 hours), by the service clock.
	IdempotencyTTL = 24 * time.Hour
	// IdempotencyLease is how long a claim stays exclusive without being
	// renewed: a claim whose lease ran out is taken to have died with its
	// unit uncommitted, and the same request may claim the record again. Its
	// holder renews it every IdempotencyRenewEvery while the request runs,
	// so it runs out only when the holder died (or could not reach the
	// store for IdempotencyLease - IdempotencyRenewEvery). 5 s: a retry
	// after a crash resolves within 5 s of the crash on PostgreSQL, where a
	// dead holder shows only as a lease no longer renewed. (It was 60 s,
	// unrenewed: a retry was answered 409 for a minute after a restart.)
	IdempotencyLease = 5 * time.Second
	// IdempotencyRenewEvery is how often a running request's claim is renewed
	// (a one-statement unit, only for requests that last that long): four
	// renewals may fail in a row before the lease lapses.
	IdempotencyRenewEvery = time.Second
	// IdempotencyKeySize is the size of the key that seals stored answers
	// (AES-256-GCM).
	IdempotencyKeySize = 32

	headerIdempotencyKey = "Idempotency-Key"
	headerReplayed       = "Idempotent-Replayed"
)

// idempotency keeps the answers of requests made with an Idempotency-Key.
type idempotency struct {
	aead  cipher.AEAD // nil: no key; completed requests are not replayed
	store store.Store
	now   func() time.Time
	log   *slog.Logger
}

func newIdempotency(key []byte, st store.Store, now func() time.Time, log *slog.Logger) (*idempotency, error) {
	id := &idempotency{store: st, now: now, log: log}
	if key == nil {
		return id, nil
	}
	if len(key) != IdempotencyKeySize {
		return nil, fmt.Errorf("server: the idempotency key must be %d bytes, not %d", IdempotencyKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	if id.aead, err = cipher.NewGCM(block); err != nil {
		return nil, err
	}
	return id, nil
}

// additionalData binds a sealed answer to its record: a body copied into
// another record (another account, key or claim) does not open.
func additionalData(mode, account, key, id string) []byte {
	var b bytes.Buffer
	b.WriteString("hsrcpay-idempotency-v1")
	for _, f := range []string{mode, account, key, id} {
		_ = binary.Write(&b, binary.BigEndian, uint64(len(f)))
		b.WriteString(f)
	}
	return b.Bytes()
}

// seal encrypts body: a random nonce, then the ciphertext.
func (i *idempotency) seal(body, ad []byte) ([]byte, error) {
	nonce := make([]byte, i.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return i.aead.Seal(nonce, nonce, body, ad), nil
}

func (i *idempotency) open(sealed, ad []byte) ([]byte, error) {
	n := i.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("sealed answer too short")
	}
	return i.aead.Open(nil, sealed[:n], sealed[n:], ad)
}

// idemCall is a claimed request, on its context for the handler.
type idemCall struct {
	i      *idempotency
	mode   string
	rec    *store.IdempotencyRecord
	status int
	body   []byte // the rendered answer, once recorded
}

type idemCallKey struct{}

func idemCallFrom(ctx context.Context) *idemCall {
	c, _ := ctx.Value(idemCallKey{}).(*idemCall)
	return c
}

// record returns the option that has the use case complete the record, in
// its unit, with the answer render makes of what it issued; status is the
// answer's. Without a claimed call it is no option.
func (c *idemCall) record(status int, render func(*apikeys.Issued) any) apikeys.UnitOption {
	if c == nil {
		return nil
	}
	return apikeys.WithRecord(func(ctx context.Context, tx store.Tx, is *apikeys.Issued) error {
		body, err := json.Marshal(render(is))
		if err != nil {
			return err
		}
		var sealed []byte // nil without a key: the request is not replayed, still not repeated
		if c.i.aead != nil {
			if sealed, err = c.i.seal(body, additionalData(c.mode, c.rec.AccountID, c.rec.Key, c.rec.ID)); err != nil {
				return err
			}
		}
		if err := tx.CompleteIdempotency(ctx, c.rec.AccountID, c.rec.Key, c.rec.ID, status, sealed); err != nil {
			return err
		}
		c.status, c.body = status, body
		return nil
	})
}

// answer is what the handler returns when it recorded one: the very bytes
// a replay will send.
func (c *idemCall) answer() (rawJSON, bool) {
	if c == nil || c.body == nil {
		return rawJSON{}, false
	}
	return rawJSON{status: c.status, body: c.body}, true
}

// rawJSON is a response already rendered.
type rawJSON struct {
	status int
	body   []byte
}

func (r rawJSON) write(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(r.status)
	_, err := w.Write(r.body)
	return err
}

func (r rawJSON) VisitCreateApiKeyResponse(w http.ResponseWriter) error     { return r.write(w) }
func (r rawJSON) VisitRegenerateApiKeyResponse(w http.ResponseWriter) error { return r.write(w) }

// ownRotation reports whether the request is a replaced secret's retry of
// its own key's rotation (policy.OwnRotation), with one Idempotency-Key:
// the only request of a replaced secret that goes on, as replay only.
func ownRotation(c echo.Context, p *auth.Principal) bool {
	route, params := routeOf(c)
	return p != nil && route != nil && route.Operation.OperationID == "regenerateApiKey" &&
		len(c.Request().Header.Values(headerIdempotencyKey)) == 1 &&
		policy.OwnRotation(p, policy.RegenerateKey, params["id"])
}

type replayOnlyKey struct{}

// errReplayOnly stops a replay-only request that would have gone on to run.
var errReplayOnly = errors.New("idempotency: a replaced secret may only replay its rotation's answer")

// replayOnly runs the rest of the stack for a request that may only be
// answered a stored answer (ownRotation): the idempotency middleware reads
// the record instead of claiming it and never calls the handler. Anything
// but a replayed answer is refusal, the answer the request gets today (a
// failure of ours, 5xx, stays what it is, so that the client retries).
func (s *Server) replayOnly(c echo.Context, next echo.HandlerFunc, refusal *apierr.Error) error {
	req := c.Request()
	c.SetRequest(req.WithContext(context.WithValue(req.Context(), replayOnlyKey{}, true)))
	err := next(c)
	if err == nil && c.Response().Header().Get(headerReplayed) == "true" {
		return nil
	}
	if err != nil {
		if ae := toAPIError(err); ae.Status >= http.StatusInternalServerError && !errors.Is(err, errReplayOnly) {
			return err
		}
		return refusal
	}
	if c.Response().Committed { // never: only a replay answers
		s.log.Error("idempotency: a replay-only request was answered without a replay", "request_id", requestID(c))
		return nil
	}
	return refusal
}

func isReplayOnly(ctx context.Context) bool {
	only, _ := ctx.Value(replayOnlyKey{}).(bool)
	return only
}

// idempotent is the middleware, after request validation: it claims the
// record of a create or regenerate that carries an Idempotency-Key, or
// answers from what the record holds. A replay-only request (replayOnly) is
// answered from the record or refused, never claims and never runs.
func (s *Server) idempotent(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		next := next // the stack is built once: never change the shared one
		only := isReplayOnly(req.Context())
		if only {
			next = func(echo.Context) error { return errReplayOnly }
		}
		values := req.Header.Values(headerIdempotencyKey)
		if len(values) == 0 {
			return next(c)
		}
		route, params := routeOf(c)
		if route == nil {
			return next(c)
		}
		op := route.Operation.OperationID
		if op != "createApiKey" && op != "regenerateApiKey" {
			return next(c)
		}
		if len(values) > 1 {
			return apierr.Validation([]apierr.FieldError{{Location: "header", Field: headerIdempotencyKey, Reason: "must be given once"}})
		}
		p := auth.FromContext(req.Context())
		if p == nil {
			return errNoPrincipal
		}
		ctx := req.Context()
		repo := s.store.Repo(p.Mode)
		var account string
		switch op {
		case "createApiKey":
			account = req.URL.Query().Get("account_id")
		case "regenerateApiKey":
			// The key's account: the one whose keys the record speaks of.
			k, err := repo.GetKey(ctx, params["id"])
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if k != nil {
				account = k.AccountID
			}
		}
		if !p.CanActOn(account) {
			// The use case refuses it (403 or 404) and changes nothing:
			// nothing to keep, and no record in an account not the caller's.
			return next(c)
		}
		fp, err := fingerprint(req, p)
		if err != nil {
			return err
		}
		now := s.idem.now().UTC()
		if only {
			// Read, never claim: a replaced secret starts nothing.
			var cur *store.IdempotencyRecord
			err := repo.InTx(ctx, func(tx store.Tx) error {
				var err error
				cur, err = tx.LockIdempotency(ctx, account, values[0])
				return err
			})
			if errors.Is(err, store.ErrNotFound) {
				return errReplayOnly // no answer kept under this key
			}
			if err != nil {
				return err
			}
			if !cur.ExpiresAt.After(now) {
				return errReplayOnly // expired: the key would start a new execution
			}
			return s.idemAnswered(op, s.idem.answerExisting(c, string(p.Mode), cur, fp, func(stored []byte) error {
				return s.authorizeReplay(ctx, p, op, params, stored)
			}))
		}
		rec := &store.IdempotencyRecord{
			AccountID: account, Key: values[0], ID: newClaimID(), Fingerprint: fp, State: store.IdempotencyInProgress,
			CreatedAt: now, LeaseUntil: now.Add(IdempotencyLease), ExpiresAt: now.Add(IdempotencyTTL),
		}
		var (
			cur     *store.IdempotencyRecord
			claimed bool
		)
		err = repo.InTx(ctx, func(tx store.Tx) error {
			var err error
			cur, claimed, err = store.ClaimIdempotency(ctx, tx, rec, now)
			return err
		})
		if err != nil {
			return err
		}
		if !claimed {
			return s.idemAnswered(op, s.idem.answerExisting(c, string(p.Mode), cur, fp, func(stored []byte) error {
				return s.authorizeReplay(ctx, p, op, params, stored)
			}))
		}
		s.metrics.Idempotency.WithLabelValues(op, idemClaimed).Inc()
		call := &idemCall{i: s.idem, mode: string(p.Mode), rec: rec}
		c.SetRequest(req.WithContext(context.WithValue(ctx, idemCallKey{}, call)))
		stopRenewing := s.idem.keepLease(ctx, repo, rec, requestID(c))
		err = next(c)
		stopRenewing()
		if err != nil || call.body == nil {
			// Failed (or answered without completing): nothing committed,
			// so the request may run again; release the claim now rather
			// than after the lease. A completed record is not released
			// (the release matches in-progress claims only).
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := repo.InTx(rctx, func(tx store.Tx) error {
				return tx.ReleaseIdempotency(rctx, rec.AccountID, rec.Key, rec.ID)
			}); rerr != nil {
				s.log.Warn("idempotency claim not released; it lapses with its lease", "request_id", requestID(c), "err", rerr)
			}
		}
		return err
	}
}

// keepLease renews rec's lease every IdempotencyRenewEvery until the
// returned function is called (when the request has ended; it waits for a
// renewal under way). A claim lost meanwhile (store.ErrIdempotencyLost: the
// lease lapsed and a retry claimed the record) is not renewed again: the
// request's completion fails the same way, and its unit rolls back.
func (i *idempotency) keepLease(ctx context.Context, repo store.Repository, rec *store.IdempotencyRecord, reqID string) (stop func()) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(IdempotencyRenewEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			until := i.now().UTC().Add(IdempotencyLease)
			err := repo.InTx(ctx, func(tx store.Tx) error {
				return tx.RenewIdempotency(ctx, rec.AccountID, rec.Key, rec.ID, until)
			})
			switch {
			case err == nil:
			case errors.Is(err, store.ErrIdempotencyLost):
				// Completed in the meantime (the request is about to
				// stop this), or lapsed and claimed again.
				return
			case ctx.Err() != nil:
				return
			default:
				i.log.Warn("idempotency claim not renewed; it lapses with its lease unless a later renewal succeeds",
					"request_id", reqID, "err", err)
			}
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// authorizeReplay hands the replay decision to the use case
// (apikeys.Service.AuthorizeReplay) with the key whose secret the stored
// answer holds: the key in the path for a regenerate, the key the answer
// issued for a create (its data.id, read from the answer already opened:
// the record keeps no key id of its own, and the answer is the very thing
// about to be handed out).
func (s *Server) authorizeReplay(ctx context.Context, p *auth.Principal, op string, params map[string]string, stored []byte) error {
	switch op {
	case "regenerateApiKey":
		return s.Service.AuthorizeReplay(ctx, p, policy.RegenerateKey, params["id"])
	case "createApiKey":
		var answer struct {
			Data struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if err := json.Unmarshal(stored, &answer); err != nil || answer.Data.ID == "" {
			return apierr.Internal(fmt.Errorf("idempotency: a stored create answer names no key (%w)", err))
		}
		return s.Service.AuthorizeReplay(ctx, p, policy.CreateKey, answer.Data.ID)
	}
	return apierr.Internal(errors.New("idempotency: replay of operation " + op))
}

// answerExisting answers a request whose key holds a record it did not
// claim: the same request's stored answer, or why not. authorize is asked,
// with the opened answer, whether this caller may receive it now; its error
// is the answer otherwise.
func (i *idempotency) answerExisting(c echo.Context, mode string, cur *store.IdempotencyRecord, fp []byte, authorize func(stored []byte) error) error {
	if !bytes.Equal(cur.Fingerprint, fp) {
		return apierr.New(api.CodeIdempotencyKeyReused,
			"This Idempotency-Key was used for a different request; use a new key for a new request")
	}
	if cur.State == store.IdempotencyInProgress {
		e := apierr.New(api.CodeIdempotencyConflict,
			"A request with this Idempotency-Key is still running; retry later to get its answer").
			With("replayable", true).With("state", "in_progress")
		e.Headers = map[string]string{"Retry-After": "1"}
		return e
	}
	notReplayable := func(why string) error {
		return apierr.New(api.CodeIdempotencyConflict,
			"The request with this Idempotency-Key completed, but "+why+"; it will not run again").
			With("replayable", false).With("state", "done")
	}
	switch {
	case cur.Body == nil:
		return notReplayable("its answer was not kept (the server keeps answers only with an idempotency key file)")
	case i.aead == nil:
		i.log.Warn("idempotency: a stored answer cannot be replayed: no key configured (HSRCPAY_IDEMPOTENCY_KEY_FILE)", "request_id", requestID(c))
		return notReplayable("this server cannot read its stored answer")
	}
	body, err := i.open(cur.Body, additionalData(mode, cur.AccountID, cur.Key, cur.ID))
	if err != nil {
		i.log.Warn("idempotency: a stored answer does not decrypt: is HSRCPAY_IDEMPOTENCY_KEY_FILE the key the other replicas use?",
			"request_id", requestID(c))
		return notReplayable("this server cannot read its stored answer")
	}
	if err := authorize(body); err != nil {
		return err
	}
	c.Response().Header().Set(headerReplayed, "true")
	return c.Blob(cur.Status, echo.MIMEApplicationJSON, body)
}

// fingerprintVersion names the encoding below; a change to what the
// fingerprint covers changes it.
//
// v2 (issue 17) binds the exact credential; v1 bound a JWT by its subject
// only, so another token of the same person matched. Records written under
// v1 (24 hours at most after the upgrade) match no v2 fingerprint: a retry
// of such a request gets 42207 and no answer. That is deliberate: honouring
// v1 would keep the hole open for those 24 hours, and what a client loses is
// small (a repeated create meets the name it already used, 40900; a
// repeated rotation just rotates again).
const fingerprintVersion = "hsrcpay-idempotency-fingerprint-v2"

// fingerprint is SHA-256 over what makes two requests the same: method,
// path, query (canonical: sorted), body and the exact credential. The body
// is the one request validation kept (the validated value, as the handler
// binds it). The credential (credentialFields) is a key's id and secret
// hash, or a JWT's issuer, subject, mode, token id, accounts and
// permissions: another credential, even of the same key or person, is a
// different request, so a stored answer never reaches a credential other
// than the one that made it. Every field is length-prefixed, lists by their
// count too, so no two different requests encode alike.
func fingerprint(req *http.Request, p *auth.Principal) ([]byte, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		body = b
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	h := sha256.New()
	field := func(f []byte) {
		_ = binary.Write(h, binary.BigEndian, uint64(len(f)))
		h.Write(f)
	}
	for _, f := range [][]byte{
		[]byte(fingerprintVersion), []byte(req.Method), []byte(req.URL.EscapedPath()),
		[]byte(req.URL.Query().Encode()), body,
	} {
		field(f)
	}
	credentialFields(p, field)
	return h.Sum(nil), nil
}

// credentialFields feeds field what identifies p exactly, canonically.
//
// A key is its id and the hash of the secret presented: its state (status,
// expiry, grants) is not bound, it is what AuthorizeReplay re-reads (a key
// disabled, or made to expire sooner, since gets the refusal a fresh request
// would get, not 42207). A JWT is stateless: what it
// may do is what it carries, so all of it is bound (issuer, subject, mode,
// jti, accounts and permissions, the lists sorted and without repeats) and a
// down-scoped or otherwise different token of the same subject is another
// request.
func credentialFields(p *auth.Principal, field func([]byte)) {
	if p.KeyID != "" {
		for _, f := range [][]byte{[]byte("key"), []byte(p.Mode), []byte(p.KeyID), p.SecretHash} {
			field(f)
		}
		return
	}
	for _, f := range []string{"jwt", string(p.Mode), p.Issuer, p.Subject, p.TokenID} {
		field([]byte(f))
	}
	perms := make([]string, 0, len(p.Permissions))
	for g := range p.Permissions {
		perms = append(perms, g)
	}
	for _, list := range [][]string{slices.Clone(p.Accounts), perms} {
		slices.Sort(list)
		list = slices.Compact(list)
		field(binary.BigEndian.AppendUint64(nil, uint64(len(list))))
		for _, v := range list {
			field([]byte(v))
		}
	}
}

func newClaimID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:])
}

// LoadIdempotencyKey reads the key that seals stored answers from path: 32
// bytes, raw or base64 (standard or URL alphabet, padded or not; surrounding
// whitespace ignored). With create, a missing file is created with a new
// random key, mode 0600 (never overwriting one that appeared meanwhile).
func LoadIdempotencyKey(path string, create bool) (key []byte, created bool, err error) {
	b, err := os.ReadFile(path) //nolint:gosec // the operator's configured path (HSRCPAY_IDEMPOTENCY_KEY_FILE), read at start
	if errors.Is(err, fs.ErrNotExist) && create {
		k := make([]byte, IdempotencyKeySize)
		if _, err := rand.Read(k); err != nil {
			return nil, false, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600) //nolint:gosec // the operator's data directory's sibling, at start
		if errors.Is(err, fs.ErrExist) {
			return LoadIdempotencyKey(path, false)
		}
		if err != nil {
			return nil, false, fmt.Errorf("idempotency key file: %w", err)
		}
		_, werr := f.WriteString(base64.StdEncoding.EncodeToString(k) + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return nil, false, fmt.Errorf("idempotency key file %s: %w", path, werr)
		}
		return k, true, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("idempotency key file: %w", err)
	}
	if len(b) == IdempotencyKeySize {
		return b, false, nil
	}
	text := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(text); err == nil && len(k) == IdempotencyKeySize {
			return k, false, nil
		}
	}
	return nil, false, fmt.Errorf("idempotency key file %s: want %d bytes, raw or base64", path, IdempotencyKeySize)
}
