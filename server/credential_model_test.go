package server_test

// TestCredentialSafetyModel is a model-based test of the credential-safety
// rules of issue 9 and of the key lifecycle. rapid drives a real server on a
// real store (SQLite, and PostgreSQL when it is up) through the Go client with
// random credentials and operations (create, regenerate, get, list, update,
// delete, list audit events, authentication probes, clock jumps); after every
// answer and every step it compares with an independent model: the status and
// code of each answer (following the contract's order of checks), the
// secrets issued, which secrets authenticate, every stored key and the audit
// trail. The model imports none of the server's rules (internal/apikeys,
// internal/policy, internal/perm): the catalog, the managed keys'
// permissions, the order of checks and the audit chain's encoding are written
// out here, so a change to either side shows up as a disagreement.
// (apikeys.VerifyAudit is called as a thing under test, never to predict.)
//
// The rules it holds the server to:
//  1. power never grows: a secret obtained by create or regenerate holds no
//     permission its obtaining credential lacks (keys and JWTs); nobody
//     regenerates, updates (disables, enables) or deletes a key holding more
//     than they do;
//  2. life never grows: a secret obtained by an expiring KEY expires no later
//     than that key, and an expiring key changes no key that outlives it
//     (JWTs are exempt);
//  3. a replaced secret in its grace period manages and reads nothing (403
//     40304) but still authenticates; the owner's current secret keeps working;
//  4. every secret held authenticates exactly while the model says it lives:
//     never once its key is deleted or switched off, again once switched on;
//  5. nothing else changes: every stored key of both accounts and both modes
//     (deleted, status, name, expiry, metadata, secrets) matches the model
//     after every step;
//  6. every answer's status and code are the model's;
//  7. no answer of get, list, update, delete or list-audit-events carries a
//     secret the model knows, its random part or its hash;
//  8. an audit event for every change: each successful create, regenerate,
//     update that changed something, disable, enable and first delete adds
//     exactly one event to its account and mode (action, key, actor, changed
//     fields), nothing else adds any, and the chains verify
//     (apikeys.VerifyAudit, and an independent recomputation of each new
//     event's hash from the README's encoding);
//  9. verify, by any credential of any token (the run's secrets, current,
//     replaced or dead, of every account and mode; tokens that are no key's),
//     answers the model's verdict with the key's details exactly when the
//     caller acts on the key's account in its mode; every other token gets
//     NOT_FOUND, byte for byte alike (another account's key cannot be told
//     from no key); and verify changes no key and records no event (rules 5
//     and 8 hold across it);
// 10. a leak report (GitHub's, signed) labels each token true_positive
//     exactly when the store still knows it by its hash, deletes a custom
//     key whose current secret leaked and ends a leaked replaced secret's
//     grace, one event each (actor platform/secret-scanning) and nothing
//     else; the leaked secrets are refused from the next step on; a
//     publishable key's live secret is public by design: false_positive,
//     no change, one event per report recording it
//     (credential_model_leaks_test.go);
// 11–14. who may take power away (issue 17), driven by two more actors, an
//     outsider holding only public material and a peer holding the managed
//     secret key's permissions (credential_model_actors_test.go): the
//     account's root stays switched on and held; the outsider's requests
//     spend no budget but its own address's; a publishable key reported as
//     leaked changes nothing; a replayed answer goes only to the credential
//     that made the request, while it could obtain it directly, or to the
//     secret that rotated its own key once that rotation replaced it (the
//     one exception, issue 18);
// 15. networks never widen (issue 22, credential_model_networks_test.go).

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// csmCatalog is the permission catalog of openapi.yaml, written out (checked
// against the managed secret key's stored permissions). Key management comes
// first so that shrunk counterexamples name those permissions.
var csmCatalog = []string{
	"account:api:key:update", "account:api:key:create", "account:api:key:read", "account:api:key:delete",
	"account:api:key:verify", "account:read", "account:update",
	"customer:create", "customer:read", "customer:update", "customer:delete",
	"payment:create", "payment:read", "payment:update", "payment:cancel",
	"refund:create", "refund:read",
	"webhook:create", "webhook:read", "webhook:update", "webhook:delete",
	"account:audit:read",
}

// csmPublishable is what a managed publishable key holds: the catalog's read
// actions except on API keys.
var csmPublishable = []string{"account:read", "customer:read", "payment:read", "refund:read", "webhook:read"}

const (
	csmPermCreate = "account:api:key:create"
	csmPermUpdate = "account:api:key:update"
	csmPermDelete = "account:api:key:delete"
	csmPermRead   = "account:api:key:read"
	csmPermAudit  = "account:audit:read"
	csmPermVerify = "account:api:key:verify"
	// csmNoSuchKey is a well-formed id that never exists: regenerating it
	// changes nothing, so it probes what a credential may do.
	csmNoSuchKey = "key_doesnotexist0000"
)

// csmNames are the names creates use, two of them the managed keys'.
var csmNames = []string{"n0", "n1", "n2", "n3", "n4", "n5", "Managed secret key", "n6", "n7", "n8", "n9", "Managed publishable key"}

// csmMaxExpiry is the latest expires_at the contract accepts.
var csmMaxExpiry = time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)

func TestCredentialSafetyModel(t *testing.T) {
	hxNoRapidFailFiles()
	// Fewer, longer runs than for create and regenerate alone: the lifecycle
	// (create, then update, delete, update the deleted key…) needs depth.
	t.Run("sqlite", func(t *testing.T) {
		csmRun(t, testenv.Config{}, 20, 40)
	})
	t.Run("postgres", func(t *testing.T) {
		// Fewer runs: each request costs a network round trip or two.
		csmRun(t, testenv.Config{Store: openPostgres(t, storetest.FreshPostgresDB(t))}, 8, 30)
	})
}

// csmRun runs the state machine against one server. checks and steps
// (average actions per run; a run stops acting at twice that) are defaults
// that -rapid.checks / -rapid.steps (or RAPID_CHECKS / RAPID_STEPS) override.
func csmRun(t *testing.T, cfg testenv.Config, checks, steps int) {
	csmRapidDefaults(t, map[string]int{"rapid.checks": checks, "rapid.steps": steps})
	maxSteps := 2 * csmFlagInt(t, "rapid.steps")
	leakSigner, ghKeys := testenv.NewLeakSigner(t, "gh-csm")
	cfg.SecretScanning = ghKeys
	// Every budget asked for is logged: whose a request spent (rule 12).
	limiter := &budgetLog{inner: ratelimit.NewMemory()}
	cfg.Limiter = limiter
	env := testenv.New(t, cfg)
	csmCheckCatalog(t, env)
	stats := map[string]int{}
	runs := 0
	view := csmNewAuditView(env.Store)
	start := time.Now()
	rapid.Check(t, func(rt *rapid.T) {
		runs++
		// What an earlier run left unverified (a failed one stops mid-step)
		// is verified now, so that each run answers for its own accounts only.
		if _, err := view.verify(); err != nil {
			rt.Fatalf("AUDIT CHAIN broken before the run started: %v", err)
		}
		m := csmNewModel(t, env, view, runs, maxSteps, stats)
		m.leakSigner = leakSigner
		m.limiter = limiter
		rt.Repeat(map[string]func(*rapid.T){
			// create three times as often as the rest: the lifecycle needs custom keys.
			"create":     m.create,
			"create 2":   m.create,
			"create 3":   m.create,
			"regenerate": m.regenerate,
			"probe":      m.probeAction,
			"advance":    m.advance,
			"get":        m.get,
			"list":       m.list,
			"update":     m.update,
			"delete":     m.delete,
			"audit":      m.listAudit,
			"verify":     m.verify,
			"leak":       m.leak,
			// Issue 17's actors (credential_model_actors_test.go).
			"outsider":      m.outsider,
			"outsider leak": m.outsiderLeak,
			"peer":          m.peer,
			"replay":        m.replay,
			// Issue 22 (credential_model_networks_test.go).
			"restricted": m.restricted,
			"":           m.check,
		})
	})
	// Each step verified the chains it could have changed; once more, every
	// chain of the store without exception.
	n, err := apikeys.VerifyAudit(ctx, env.Store)
	if err != nil {
		t.Fatalf("AUDIT CHAIN: apikeys.VerifyAudit after all runs: %v", err)
	}
	var lines []string
	for k, v := range stats {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(lines)
	t.Logf("%d runs in %v, %d audit events verified; answers: %s", runs, time.Since(start).Round(time.Millisecond), n, strings.Join(lines, ", "))
}

// csmExplicitFlags are the flags the command line set, read before this test
// sets any (flag.Visit cannot tell a command-line value from a flag.Set).
var csmExplicitFlags = sync.OnceValue(func() map[string]bool {
	explicit := map[string]bool{}
	flag.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	return explicit
})

// csmRapidDefaults sets rapid's flags for this subtest unless the command line
// or the environment set them, and restores them afterwards.
func csmRapidDefaults(t *testing.T, defaults map[string]int) {
	explicit := csmExplicitFlags()
	for name, v := range defaults {
		env := strings.ToUpper(strings.ReplaceAll(name, ".", "_"))
		if _, set := os.LookupEnv(env); set || explicit[name] {
			continue
		}
		old := flag.Lookup(name).Value.String()
		if err := flag.Set(name, strconv.Itoa(v)); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = flag.Set(name, old) })
	}
}

func csmFlagInt(t *testing.T, name string) int {
	n, err := strconv.Atoi(flag.Lookup(name).Value.String())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// csmCheckCatalog makes sure the written-out catalog is the server's: a
// managed secret key holds exactly csmCatalog, a publishable one csmPublishable.
func csmCheckCatalog(t *testing.T, env *testenv.Env) {
	for mode, mk := range env.Bootstrap("acct_csm_catalog") {
		for id, want := range map[string][]string{mk.SecretID: csmCatalog, mk.PublishableID: csmPublishable} {
			k, err := env.Store.Repo(mode).GetKey(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := csmFromMap(k.Permissions); !got.equal(csmSetOf(want...)) {
				t.Fatalf("the model's catalog is out of date: managed key %s holds %s, the model says %s", k.Name, got, csmSetOf(want...))
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Permission sets.

type csmSet map[string]bool

func csmSetOf(perms ...string) csmSet {
	s := csmSet{}
	for _, p := range perms {
		s[p] = true
	}
	return s
}

func csmFromMap(m map[string][]string) csmSet {
	s := csmSet{}
	for res, actions := range m {
		for _, a := range actions {
			s[res+":"+a] = true
		}
	}
	return s
}

func (s csmSet) list() []string {
	out := make([]string, 0, len(s))
	for p := range s {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// minus lists, sorted, what s holds and o lacks.
func (s csmSet) minus(o csmSet) []string {
	var out []string
	for p := range s {
		if !o[p] {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

func (s csmSet) equal(o csmSet) bool { return len(s.minus(o)) == 0 && len(o.minus(s)) == 0 }

// ordered lists s in catalog order (what draws pick from, so shrinking
// prefers key-management permissions).
func (s csmSet) ordered() []string {
	var out []string
	for _, p := range csmCatalog {
		if s[p] {
			out = append(out, p)
		}
	}
	return out
}

func (s csmSet) perms() client.Permissions {
	out := client.Permissions{}
	for _, p := range s.list() {
		i := strings.LastIndex(p, ":")
		out[p[:i]] = append(out[p[:i]], p[i+1:])
	}
	return out
}

func (s csmSet) String() string {
	switch {
	case s.equal(csmSetOf(csmCatalog...)):
		return "[all]"
	case len(s) > 6:
		return fmt.Sprintf("[all but %s]", strings.Join(csmSetOf(csmCatalog...).minus(s), " "))
	}
	return "[" + strings.Join(s.list(), " ") + "]"
}

// ---------------------------------------------------------------------------
// The model.

// csmKey is a stored key as the model expects it.
type csmKey struct {
	label       string // for messages: "managed secret A/live", "custom k3 B/test"
	id, account string
	name        string
	mode        apikey.Mode
	publishable bool
	managed     bool
	perms       csmSet
	expires     *time.Time // nil: never
	cur         string     // the current secret
	prev        string     // the replaced secret, kept (by its hash) until the next rotation; "" if none
	prevEnd     time.Time  // when prev stops working (the rotation's time without grace)
	gen         int        // secrets issued so far
	deleted     bool
	inactive    bool              // switched off (status INACTIVE)
	metadata    map[string]string // nil: none
	creator     string            // created_by.id: "bootstrap", a key id or a JWT subject
	networks    []string          // allowed_networks, canonical; nil: any address
	rate        *csmRate          // its own rate limit; nil: the mode's default
	credits     *csmCredits       // its usage credits; nil: none
}

// csmSecret is one plaintext secret the model holds.
type csmSecret struct {
	token string
	key   *csmKey
	gen   int // which of the key's secrets: 1 for the first
}

// csmGrant is what a JWT grants.
type csmGrant struct {
	sub      string
	mode     apikey.Mode
	accounts []string
	perms    csmSet
}

// csmCaller is a drawn credential: a secret the model holds, or a JWT.
type csmCaller struct {
	token  string
	secret *csmSecret
	jwt    *csmGrant
	label  string
}

// csmPrincipal is what the model says a credential authenticates as.
type csmPrincipal struct {
	isKey       bool
	publishable bool
	grace       bool // a replaced secret in its grace period
	mode        apikey.Mode
	accounts    []string
	perms       csmSet
	expires     *time.Time  // key credentials only
	networks    []string    // key credentials only; nil: any address
	rate        *csmRate    // key credentials only; nil: the mode's default
	credits     *csmCredits // key credentials only: the key's own (settle before use); nil: none
}

func (p *csmPrincipal) canActOn(account string) bool { return slices.Contains(p.accounts, account) }

// csmWant is a predicted answer and the rule that decides it.
type csmWant struct {
	status int
	code   client.ErrorCode
	rule   string
}

func (w csmWant) String() string {
	if w.code == 0 {
		return fmt.Sprintf("%d (%s)", w.status, w.rule)
	}
	return fmt.Sprintf("%d/%d (%s)", w.status, w.code, w.rule)
}

type csmAnswer struct {
	status int
	code   client.ErrorCode
}

type csmModel struct {
	tt             *testing.T // the subtest, which signs JWTs
	env            *testenv.Env
	acctA, acctB   string
	ghost          string // an account that exists in no mode
	keys           []*csmKey
	byID           map[string]*csmKey
	secrets        []*csmSecret
	seen           map[*csmSecret]csmAnswer // each secret's probe answer last confirmed
	rr             int                      // round-robin cursor: one unchanged secret re-probed per step
	seq            int
	steps, maxStep int
	idle           bool                    // past maxStep: actions do nothing
	advanced       time.Duration           // sum of clock advances in this run
	virt           map[int64]time.Duration // times the model made (Unix µs) → virtual offset, for rel
	stats          map[string]int
	audit          *csmAuditView
	log            map[string][]csmEvent // per csmPair: the events the model expects, oldest first
	checked        map[string]int        // per csmPair: how many of them the store was seen to hold
	needles        []csmNeedle           // what no read or lifecycle answer may contain
	leakSigner     secretscan.Signer     // GitHub, for leak reports
	limiter        *budgetLog            // the server's, logging whose budgets requests spend
	originals      []*csmOriginal        // keyed creates and regenerates answered 2xx, for replays
}

// csmEvent is an audit event the model expects.
type csmEvent struct {
	action    string
	key       *csmKey
	actorKind string // key, jwt or platform
	actorID   string
	// changes is the exact set of fields an event must name (sorted); nil
	// leaves it to the server (create, regenerate, bootstrap name everything).
	changes []string
	values  map[string]string // the new value of some changed fields, as text
}

// csmNeedle is a string no answer of a read or lifecycle operation may hold.
type csmNeedle struct {
	what string // for messages: "secret #2 of managed secret A/live"
	s    string
}

// csmPair names an account's audit chain in a mode.
func csmPair(account string, mode apikey.Mode) string { return string(mode) + "/" + account }

func csmNewModel(t *testing.T, env *testenv.Env, view *csmAuditView, run, maxSteps int, stats map[string]int) *csmModel {
	m := &csmModel{
		tt: t, env: env, maxStep: maxSteps, stats: stats, audit: view,
		acctA: fmt.Sprintf("acct_csm%d_a", run), acctB: fmt.Sprintf("acct_csm%d_b", run), ghost: "acct_csm_ghost",
		byID: map[string]*csmKey{}, seen: map[*csmSecret]csmAnswer{}, virt: map[int64]time.Duration{},
		log: map[string][]csmEvent{}, checked: map[string]int{},
	}
	for _, acct := range []string{m.acctA, m.acctB} {
		managed := env.Bootstrap(acct)
		for _, mode := range apikey.Modes {
			mk := managed[mode]
			where := m.short(acct) + "/" + string(mode)
			for _, k := range []*csmKey{
				{label: "managed secret " + where, id: mk.SecretID, account: acct, name: "Managed secret key",
					mode: mode, managed: true, perms: csmSetOf(csmCatalog...), creator: "bootstrap"},
				{label: "managed publishable " + where, id: mk.PublishableID, account: acct, name: "Managed publishable key",
					mode: mode, managed: true, publishable: true, perms: csmSetOf(csmPublishable...), creator: "bootstrap"},
			} {
				secret := mk.Secret
				if k.publishable {
					secret = mk.Publishable
				}
				m.addKey(k, secret)
				// Provisioning records each managed key, secret key first.
				m.record(csmEvent{action: "bootstrap", key: k, actorKind: "platform", actorID: "bootstrap",
					values: map[string]string{"name": k.name, "key_hint": csmHint(secret)}})
			}
		}
	}
	return m
}

func (m *csmModel) addKey(k *csmKey, secret string) {
	m.keys = append(m.keys, k)
	m.byID[k.id] = k
	m.setSecret(k, secret)
}

func (m *csmModel) setSecret(k *csmKey, secret string) {
	k.gen++
	k.cur = secret
	s := &csmSecret{token: secret, key: k, gen: k.gen}
	m.secrets = append(m.secrets, s)
	what := fmt.Sprintf("secret #%d of %s", s.gen, k.label)
	h := sha256.Sum256([]byte(secret))
	m.needles = append(m.needles,
		csmNeedle{what, secret[8:40]}, // the random part (after sk_live_ / pk_test_, before the checksum)
		csmNeedle{"the SHA-256 (hex) of " + what, hex.EncodeToString(h[:])},
		csmNeedle{"the SHA-256 (base64) of " + what, base64.StdEncoding.EncodeToString(h[:])},
		csmNeedle{"the SHA-256 (base64url) of " + what, base64.RawURLEncoding.EncodeToString(h[:])},
	)
}

// record appends an event the model expects on the key's account and mode.
func (m *csmModel) record(e csmEvent) {
	pair := csmPair(e.key.account, e.key.mode)
	m.log[pair] = append(m.log[pair], e)
}

// actorOf is who an event names for a change the caller made.
func (m *csmModel) actorOf(c *csmCaller) (kind, id string) {
	if c.jwt != nil {
		return "jwt", c.jwt.sub
	}
	return "key", c.secret.key.id
}

// csmHint is the key_hint of a secret: its prefix and last four characters.
func csmHint(secret string) string { return secret[:8] + "…" + secret[len(secret)-4:] }

// now is the server's clock. Every expiry the model sets lies 30 s off a
// whole minute from the clock readings it derives from, and the clock moves
// by whole minutes, so the few milliseconds between the model's reading and
// the server's never straddle an expiry.
func (m *csmModel) now() time.Time { return m.env.Clock.Now().UTC().Round(0) }

func (m *csmModel) short(account string) string {
	switch account {
	case m.acctA:
		return "A"
	case m.acctB:
		return "B"
	case m.ghost:
		return "ghost"
	}
	return account
}

// rel shows t relative to the server's clock in the run's virtual time (the
// sum of clock advances), not real time: messages must be the same each time
// rapid replays a case, or it cannot shrink it.
func (m *csmModel) rel(t *time.Time) string {
	if t == nil {
		return "never"
	}
	if t.Equal(csmMaxExpiry) {
		return "9999-12-31T23:59:59Z"
	}
	v, ok := m.virt[t.UnixMicro()]
	if !ok {
		return t.Format(time.RFC3339Nano) // not a time the model made: only in failures
	}
	if d := v - m.advanced; d >= 0 {
		return "now+" + d.String()
	}
	return "now-" + (m.advanced - v).String()
}

// at records t (the real time of virtual offset v from the run's start) for rel.
func (m *csmModel) at(t time.Time, v time.Duration) time.Time {
	m.virt[t.UnixMicro()] = v
	return t
}

func (m *csmModel) describeKey(k *csmKey) string {
	return fmt.Sprintf("%s %s expires %s", k.label, k.perms, m.rel(k.expires))
}

func (m *csmModel) describeSecret(s *csmSecret, now time.Time) string {
	k := s.key
	state := "replaced"
	switch {
	case s.token == k.cur:
		state = "current"
	case s.token == k.prev && now.Before(k.prevEnd):
		state = "replaced, grace until " + m.rel(&k.prevEnd)
	case s.token == k.prev:
		state = "replaced, grace ended " + m.rel(&k.prevEnd)
	}
	return fmt.Sprintf("secret #%d (%s) of %s", s.gen, state, m.describeKey(k))
}

// authenticate says whom c authenticates as at now, or the 401 it gets.
func (m *csmModel) authenticate(c *csmCaller, now time.Time) (*csmPrincipal, csmWant) {
	if g := c.jwt; g != nil {
		// Signed by the provider, valid for an hour of real time: the server's
		// clock does not touch it.
		return &csmPrincipal{mode: g.mode, accounts: g.accounts, perms: g.perms}, csmWant{}
	}
	s := c.secret
	k := s.key
	grace := false
	switch {
	case s.token == k.cur:
	case k.prev != "" && s.token == k.prev && now.Before(k.prevEnd):
		grace = true
	default:
		return nil, csmWant{401, client.CodeInvalidCredentials, "replaced secret: revoked"}
	}
	switch {
	case k.deleted:
		return nil, csmWant{401, client.CodeInvalidCredentials, "the key is deleted"}
	case k.inactive:
		return nil, csmWant{401, client.CodeInvalidCredentials, "the key is switched off"}
	}
	if k.expires != nil && !now.Before(*k.expires) {
		return nil, csmWant{401, client.CodeExpiredCredentials, "the key has expired"}
	}
	if !csmAllows(k.networks, "127.0.0.1") {
		return nil, csmWant{401, client.CodeInvalidCredentials, "used from outside its networks: an unknown key's answer"}
	}
	return &csmPrincipal{isKey: true, publishable: k.publishable, grace: grace, mode: k.mode,
		accounts: []string{k.account}, perms: k.perms, expires: k.expires, networks: k.networks, rate: k.rate, credits: k.credits}, csmWant{}
}

// gate is the common head of every operation's order of checks:
// 401 → (429: budgets are unlimited here) → 40303 → 40304 → 40300.
func (m *csmModel) gate(c *csmCaller, need string, now time.Time) (*csmPrincipal, *csmWant) {
	p, w := m.authenticate(c, now)
	switch {
	case p == nil:
		return nil, &w
	case p.publishable:
		return p, &csmWant{403, client.CodePublishableKeyForbidden, "publishable keys manage no keys"}
	case p.grace:
		return p, &csmWant{403, client.CodeReplacedSecret, "a replaced secret in its grace period manages no keys"}
	case !p.perms[need]:
		return p, &csmWant{403, client.CodePermissionDenied, "lacks " + need}
	}
	return p, nil
}

type csmCreateReq struct {
	account     string
	name        string
	perms       csmSet
	expires     *time.Time
	networks    *[]string // nil: absent
	sentRate    *client.RateLimit
	rate        *csmRate // sentRate as the model holds it
	credits     *csmCredits
	sentCredits *client.Credits
}

// nets is the request's networks as the server stores them.
func (r csmCreateReq) nets() []string {
	if r.networks == nil {
		return nil
	}
	return csmCanonical(*r.networks)
}

func (m *csmModel) wantCreate(c *csmCaller, r csmCreateReq, now time.Time) csmWant {
	p, w := m.gate(c, csmPermCreate, now)
	if w != nil {
		return *w
	}
	if !p.canActOn(r.account) {
		return csmWant{403, client.CodeAccountForbidden, "may not act on " + m.short(r.account)}
	}
	// An expiry no key may have is refused as input, before any rule.
	if r.expires != nil && (!r.expires.After(now) || r.expires.After(csmMaxExpiry)) {
		return csmWant{422, client.CodeInvalidExpiry, "expires_at not in the future or past 9999"}
	}
	if miss := r.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, client.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (r.expires == nil || r.expires.After(*p.expires)) {
		return csmWant{422, client.CodeLifetimeExceedsCaller, "life never grows: the caller expires " + m.rel(p.expires)}
	}
	if !csmNetsWithin(r.nets(), p.networks) {
		return csmWant{403, client.CodeNetworkEscalation, "networks never widen: the caller is restricted to " + strings.Join(p.networks, " ")}
	}
	if !csmRateWithin(r.rate, p.rate) {
		return csmWant{403, client.CodeRateLimitEscalation, "rate limits never grow: the caller's is " + p.rate.String()}
	}
	if own := p.creditsAt(now); !csmCreditsWithin(r.credits, own) {
		return csmWant{403, client.CodeCreditEscalation, "credits never grow: the caller has " + own.String()}
	}
	if r.account == m.ghost {
		return csmWant{404, client.CodeAccountNotFound, "no such account"}
	}
	if k := m.nameHolder(r.account, p.mode, r.name, nil, now); k != nil {
		return csmWant{409, client.CodeDuplicateName, "name taken by " + k.label}
	}
	return csmWant{201, 0, "created"}
}

// nameHolder is the key other than except that holds name on the account in
// mode: names are unique among keys that are neither deleted nor expired.
func (m *csmModel) nameHolder(account string, mode apikey.Mode, name string, except *csmKey, now time.Time) *csmKey {
	for _, k := range m.keys {
		if k != except && k.mode == mode && k.account == account && k.name == name && !k.deleted && !m.expired(k, now) {
			return k
		}
	}
	return nil
}

func (m *csmModel) expired(k *csmKey, now time.Time) bool {
	return k.expires != nil && !now.Before(*k.expires)
}

type csmRegenReq struct {
	id    string
	grace *int // minutes; nil: no body
}

func (m *csmModel) wantRegenerate(c *csmCaller, r csmRegenReq, now time.Time) csmWant {
	p, w := m.gate(c, csmPermUpdate, now)
	if w != nil {
		return *w
	}
	if r.grace != nil && (*r.grace < 0 || *r.grace > 10080) {
		return csmWant{400, client.CodeValidationFailed, "grace_period_minutes out of range"}
	}
	k := m.byID[r.id]
	if k == nil || k.mode != p.mode || !p.canActOn(k.account) {
		return csmWant{404, client.CodeKeyNotFound, "no such key for this credential"}
	}
	// Power and life before anything that tells the key's state (deleted,
	// custom, switched off): only a caller with power over it learns that.
	if miss := k.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, client.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) {
		return csmWant{403, client.CodeLifetimeEscalation, "life never grows: the target outlives the caller"}
	}
	if !csmNetsWithin(k.networks, p.networks) {
		return csmWant{403, client.CodeNetworkEscalation, "networks never widen: the target works beyond the caller's networks"}
	}
	if !csmRateWithin(k.rate, p.rate) {
		return csmWant{403, client.CodeRateLimitEscalation, "rate limits never grow: the target's exceeds the caller's"}
	}
	if !csmCreditsWithin(k.credits.settle(now), p.creditsAt(now)) {
		return csmWant{403, client.CodeCreditEscalation, "credits never grow: the target has more than the caller"}
	}
	if k.deleted {
		return csmWant{404, client.CodeKeyNotFound, "the key is deleted"}
	}
	if !k.managed {
		return csmWant{422, client.CodeKeyNotManaged, "custom keys are not regenerated"}
	}
	if k.inactive {
		return csmWant{409, client.CodeKeyNotActive, "the key is switched off"}
	}
	return csmWant{200, 0, "regenerated"}
}

// wantProbe is the answer to regenerating csmNoSuchKey: it proves the
// credential authenticated (404), or says why not.
func (m *csmModel) wantProbe(c *csmCaller, now time.Time) csmWant {
	return m.wantRegenerate(c, csmRegenReq{id: csmNoSuchKey}, now)
}

// ---------------------------------------------------------------------------
// Draws.

var csmCallerKinds = []string{"managed secret", "jwt", "custom key", "replaced secret in grace", "dead secret", "publishable", "peer", "restricted key"}

func (m *csmModel) drawCaller(rt *rapid.T) *csmCaller {
	now := m.now()
	var cands []*csmSecret
	kind := rapid.SampledFrom(csmCallerKinds).Draw(rt, "caller kind")
	for _, s := range m.secrets {
		k := s.key
		p, _ := m.authenticate(&csmCaller{secret: s}, now)
		var ok bool
		switch kind {
		case "managed secret":
			ok = k.managed && !k.publishable && s.token == k.cur
		case "custom key":
			ok = !k.managed && s.token == k.cur
		case "replaced secret in grace":
			ok = p != nil && p.grace
		case "dead secret":
			ok = p == nil
		case "publishable":
			ok = k.publishable && s.token == k.cur
		case "peer":
			ok = m.isPeer(k) && s.token == k.cur
		case "restricted key":
			ok = (len(k.networks) > 0 || k.rate != nil || k.credits != nil) && s.token == k.cur && p != nil
		}
		if ok {
			cands = append(cands, s)
		}
	}
	if kind == "jwt" {
		return m.drawJWT(rt)
	}
	if len(cands) == 0 { // none of that kind yet: a managed secret
		for _, s := range m.secrets {
			if s.key.managed && !s.key.publishable && s.token == s.key.cur {
				cands = append(cands, s)
			}
		}
	}
	s := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "caller #")]
	return &csmCaller{token: s.token, secret: s, label: m.describeSecret(s, now)}
}

func (m *csmModel) drawJWT(rt *rapid.T) *csmCaller {
	g := &csmGrant{
		mode:     rapid.SampledFrom(apikey.Modes).Draw(rt, "jwt mode"),
		accounts: rapid.SliceOfNDistinct(rapid.SampledFrom([]string{m.acctA, m.acctB, m.ghost}), 0, 3, rapid.ID[string]).Draw(rt, "jwt accounts"),
	}
	switch rapid.IntRange(0, 2).Draw(rt, "jwt permissions kind") {
	case 0:
		g.perms = csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(csmCatalog), 0, len(csmCatalog), rapid.ID[string]).Draw(rt, "jwt permissions")...)
	case 1:
		g.perms = csmSetOf(csmCatalog...)
	case 2:
		g.perms = csmSetOf(csmCatalog...)
		for _, p := range rapid.SliceOfNDistinct(rapid.SampledFrom(csmCatalog), 1, 4, rapid.ID[string]).Draw(rt, "jwt permissions withheld") {
			delete(g.perms, p)
		}
	}
	m.seq++
	var accts []string
	for _, a := range g.accounts {
		accts = append(accts, m.short(a))
	}
	g.sub = fmt.Sprintf("csm%d@example.com", m.seq)
	claims := m.env.JWT.Claims(g.sub, g.accounts, g.perms.list(), string(g.mode))
	return &csmCaller{token: m.env.JWT.Sign(m.tt, claims), jwt: g,
		label: fmt.Sprintf("JWT %s %s on %v in %s", g.sub, g.perms, accts, g.mode)}
}

// grantOf is what the caller would hold if it authenticated (for drawing
// requests near its limits).
func (m *csmModel) grantOf(c *csmCaller) (perms csmSet, account string, expires *time.Time) {
	if c.jwt != nil {
		account = m.acctA
		if len(c.jwt.accounts) > 0 {
			account = c.jwt.accounts[0]
		}
		return c.jwt.perms, account, nil
	}
	k := c.secret.key
	return k.perms, k.account, k.expires
}

func (m *csmModel) drawPerms(rt *rapid.T, caller csmSet) csmSet {
	switch rapid.SampledFrom([]string{"subset of the caller's", "all the caller's", "any subset", "all"}).Draw(rt, "permissions kind") {
	case "subset of the caller's":
		if own := caller.ordered(); len(own) > 0 {
			return csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(own), 0, len(own), rapid.ID[string]).Draw(rt, "permissions")...)
		}
		return csmSet{}
	case "all the caller's":
		return csmSetOf(caller.list()...)
	case "any subset":
		return csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(csmCatalog), 0, len(csmCatalog), rapid.ID[string]).Draw(rt, "permissions")...)
	}
	return csmSetOf(csmCatalog...)
}

// drawExpiry picks an expires_at relative to the caller's expiry (or, for a
// caller that never expires, to now+2h30s) or to now. Each lies 30 s off the
// whole minutes the clock moves by.
func (m *csmModel) drawExpiry(rt *rapid.T, caller *time.Time, now time.Time) *time.Time {
	ref, vref := now.Add(2*time.Hour+30*time.Second), m.advanced+2*time.Hour+30*time.Second
	if caller != nil {
		ref, vref = *caller, m.virt[caller.UnixMicro()]
	}
	var d time.Duration
	switch rapid.SampledFrom([]string{"absent", "the caller's", "1m before the caller's", "1m after the caller's",
		"in 5m", "in 1h", "in 1d", "in the past", "9999-12-31T23:59:59Z"}).Draw(rt, "expires_at") {
	case "absent":
		return nil
	case "the caller's":
	case "1m before the caller's":
		d = -time.Minute
	case "1m after the caller's":
		d = time.Minute
	case "in 5m":
		ref, vref, d = now, m.advanced, 5*time.Minute+30*time.Second
	case "in 1h":
		ref, vref, d = now, m.advanced, time.Hour+30*time.Second
	case "in 1d":
		ref, vref, d = now, m.advanced, 24*time.Hour+30*time.Second
	case "in the past":
		ref, vref, d = now, m.advanced, -time.Hour-30*time.Second
	default:
		e := csmMaxExpiry
		return &e
	}
	// Microseconds: what PostgreSQL keeps, so stored values compare equal.
	e := ref.Add(d).UTC().Truncate(time.Microsecond)
	if caller != nil && caller.Equal(csmMaxExpiry) || e.After(csmMaxExpiry) {
		e = csmMaxExpiry
		return &e
	}
	m.at(e, vref+d)
	return &e
}

// ---------------------------------------------------------------------------
// Actions.

// begin counts a step; past the cap actions do nothing (rapid's step count is
// only an average).
func (m *csmModel) begin() bool {
	m.steps++
	m.idle = m.steps > m.maxStep
	if !m.idle {
		m.awayFromMidnight()
	}
	return !m.idle
}

func (m *csmModel) create(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	perms, own, exp := m.grantOf(c)
	now := m.now()
	r := csmCreateReq{
		account: rapid.SampledFrom([]string{own, own, own, m.acctA, m.acctB, m.ghost}).Draw(rt, "account"),
		perms:   m.drawPerms(rt, perms),
		expires: m.drawExpiry(rt, exp, now),
	}
	var callerNets []string
	if c.secret != nil {
		callerNets = c.secret.key.networks
	}
	r.networks = m.drawNetworks(rt, callerNets, false)
	var callerRate *csmRate
	if c.secret != nil {
		callerRate = c.secret.key.rate
	}
	r.sentRate, r.rate = m.drawRate(rt, callerRate)
	var callerCredits *csmCredits
	if c.secret != nil {
		callerCredits = c.secret.key.credits
	}
	if r.credits = m.drawCredits(rt, callerCredits, false, m.now()); r.credits != nil {
		r.sentCredits = r.credits.sent(rt)
	}
	// Names from a small fixed pool (not from the run's history), so they
	// collide now and then and a shrunk case keeps its collisions.
	r.name = rapid.SampledFrom(csmNames).Draw(rt, "name")
	m.createWith(rt, c, r, "create")
}

// createWith has c create r (with an Idempotency-Key of the model's, kept
// for replays when answered 201) and follows the model; the new key, or
// nil when refused.
func (m *csmModel) createWith(rt *rapid.T, c *csmCaller, r csmCreateReq, step string) *client.APIKey {
	body := client.CreateAPIKeyRequest{Name: r.name, Permissions: r.perms.perms(), ExpiresAt: r.expires, AllowedNetworks: r.networks, RateLimit: r.sentRate,
		Credits: r.sentCredits}
	now := m.now()
	want := m.wantCreate(c, r, now)
	p, _ := m.authenticate(c, now)
	key := m.idempotencyKey()
	got, err := m.env.Client(c.token).CreateAPIKey(ctx, r.account, body, client.WithIdempotencyKey(key))
	a, ae := csmResult(rt, err, 201)
	m.stats[fmt.Sprintf("%s %d/%d", step, a.status, a.code)]++
	rt.Logf("step %d: %s by %s on %s: %s expires %s name %q networks %v rate %s → want %s, got %d/%d",
		m.steps, step, c.label, m.short(r.account), r.perms, m.rel(r.expires), r.name, r.nets(), r.rate, want, a.status, a.code)

	if got != nil {
		m.checkObtained(rt, c, p, csmFromMap(got.Permissions), got.ExpiresAt, now, "create")
		m.checkNetworksObtained(rt, p, csmShownNetworks(got.AllowedNetworks), "create by "+c.label)
		m.checkRateObtained(rt, p, csmShownRate(got.RateLimit), "create by "+c.label)
		m.checkCreditsObtained(rt, p, csmShownCredits(got.Credits), now, "create by "+c.label)
	}
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("create by %s: want %s, got %d/%d", c.label, want, a.status, a.code)
	}
	if ae != nil {
		if p != nil {
			m.checkDetails(rt, ae, r.perms.minus(p.perms))
		}
		m.ownerStillWorks(rt, c, ae)
		return nil
	}
	// The new key is what was asked for, in the caller's mode and account.
	prefix := "sk_" + string(p.mode) + "_"
	if got.AccountID != r.account || got.Managed || got.Type != client.TypeSecret || got.Name != r.name ||
		!csmFromMap(got.Permissions).equal(r.perms) || !csmSameTime(got.ExpiresAt, r.expires) ||
		!strings.HasPrefix(got.Key, prefix) || m.byID[got.ID] != nil || !slices.Equal(csmShownNetworks(got.AllowedNetworks), r.nets()) ||
		!csmSameRate(csmShownRate(got.RateLimit), r.rate) || !csmSameCredits(csmShownCredits(got.Credits), r.credits) {
		rt.Fatalf("create by %s returned a %s key %q on %s (managed %v) with %s expiring %s, secret %.8s…; want a new %s… key on %s with %s expiring %s",
			c.label, got.Type, got.Name, m.short(got.AccountID), got.Managed, csmFromMap(got.Permissions), m.rel(got.ExpiresAt), got.Key,
			prefix, m.short(r.account), r.perms, m.rel(r.expires))
	}
	kind, by := m.actorOf(c)
	k := &csmKey{label: fmt.Sprintf("custom#%d %s %s/%s", len(m.keys), r.name, m.short(r.account), p.mode), id: got.ID, account: r.account,
		name: r.name, mode: p.mode, perms: r.perms, expires: r.expires, creator: by, networks: r.nets(), rate: r.rate}
	values := map[string]string{"name": r.name, "key_hint": csmHint(got.Key)}
	if r.credits != nil {
		cr := *r.credits
		k.credits, values["credits"] = &cr, cr.auditValue()
	}
	m.addKey(k, got.Key)
	m.record(csmEvent{action: "create", key: k, actorKind: kind, actorID: by, values: values})
	m.remember(c, "create", key, r, csmRegenReq{}, got)
	return got
}

func (m *csmModel) regenerate(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	// Its own key too: a key rotating itself (issue 18: the replaced secret
	// may fetch that rotation's answer, rule 14).
	kind := rapid.SampledFrom([]string{"managed secret", "managed publishable", "custom key", "no such key", "the caller's own key"}).Draw(rt, "target kind")
	_, own, _ := m.grantOf(c)
	var mode apikey.Mode
	if c.jwt != nil {
		mode = c.jwt.mode
	} else {
		mode = c.secret.key.mode
	}
	// Mostly a key the caller could see, else any (other account or mode).
	scope := rapid.SampledFrom([]string{"the caller's account and mode", "the caller's account and mode", "any account and mode"}).Draw(rt, "target scope")
	var cands []*csmKey
	for _, k := range m.keys {
		if scope != "any account and mode" && (k.account != own || k.mode != mode) {
			continue
		}
		if (kind == "managed secret" && k.managed && !k.publishable) || (kind == "managed publishable" && k.publishable) ||
			(kind == "custom key" && !k.managed) || (kind == "the caller's own key" && c.secret != nil && k == c.secret.key) {
			cands = append(cands, k)
		}
	}
	r := csmRegenReq{id: csmNoSuchKey}
	var target *csmKey
	if len(cands) > 0 {
		target = cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "target #")]
		r.id = target.id
	}
	if g := rapid.SampledFrom([]int{-1, 0, 5, 60, 10080, 10081}).Draw(rt, "grace minutes (-1: no body)"); g >= 0 {
		r.grace = &g
	}
	m.regenerateWith(rt, c, target, r)
}

// regenerateWith has c regenerate target (nil: r.id is no key) as r asks,
// with an Idempotency-Key of the model's (kept for replays when answered
// 200), and follows the model.
func (m *csmModel) regenerateWith(rt *rapid.T, c *csmCaller, target *csmKey, r csmRegenReq) {
	before := m.now()
	want := m.wantRegenerate(c, r, before)
	p, _ := m.authenticate(c, before)
	var (
		got *client.APIKey
		err error
	)
	key := m.idempotencyKey()
	if r.grace != nil && *r.grace > 10080 {
		// The client refuses this before sending; the raw generated client
		// sends it, so that the server's own refusal is what is checked.
		res, rerr := m.env.Client(c.token).Raw().RegenerateAPIKeyWithResponse(ctx, r.id, nil, oapi.RegenerateAPIKeyRequest{GracePeriodMinutes: r.grace})
		switch {
		case rerr != nil:
			err = rerr
		case res.JSON200 != nil:
			var env struct {
				Data client.APIKey `json:"data"`
			}
			err = json.Unmarshal(res.Body, &env)
			got = &env.Data
		default:
			err = client.ParseError(res.HTTPResponse, res.Body)
		}
	} else {
		got, err = m.env.Client(c.token).RegenerateAPIKey(ctx, r.id, csmRegenOptions(r, key)...)
	}
	after := m.now()
	a, ae := csmResult(rt, err, 200)
	m.stats[fmt.Sprintf("regenerate %d/%d", a.status, a.code)]++
	tname := "no such key"
	if target != nil {
		tname = m.describeKey(target)
	}
	grace := "no body"
	if r.grace != nil {
		grace = fmt.Sprintf("grace %dm", *r.grace)
	}
	rt.Logf("step %d: regenerate %s by %s, %s → want %s, got %d/%d", m.steps, tname, c.label, grace, want, a.status, a.code)

	if got != nil {
		m.checkObtained(rt, c, p, csmFromMap(got.Permissions), got.ExpiresAt, before, "regenerate")
		m.checkNetworksObtained(rt, p, csmShownNetworks(got.AllowedNetworks), "regenerate by "+c.label)
		m.checkRateObtained(rt, p, csmShownRate(got.RateLimit), "regenerate by "+c.label)
		m.checkCreditsObtained(rt, p, csmShownCredits(got.Credits), before, "regenerate by "+c.label)
	}
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("regenerate %s by %s: want %s, got %d/%d", tname, c.label, want, a.status, a.code)
	}
	if ae != nil {
		if target != nil && p != nil {
			m.checkDetails(rt, ae, target.perms.minus(p.perms), p)
		}
		m.ownerStillWorks(rt, c, ae)
		return
	}
	k := target
	kindPrefix := "sk_"
	if k.publishable {
		kindPrefix = "pk_"
	}
	if got.ID != k.id || !got.Managed || !csmFromMap(got.Permissions).equal(k.perms) || !csmSameTime(got.ExpiresAt, k.expires) ||
		!slices.Equal(csmShownNetworks(got.AllowedNetworks), k.networks) || !csmSameRate(csmShownRate(got.RateLimit), k.rate) ||
		!csmSameCredits(csmShownCredits(got.Credits), k.credits.settle(before)) ||
		!strings.HasPrefix(got.Key, kindPrefix+string(k.mode)+"_") {
		rt.Fatalf("regenerate of %s returned key (same id %v, managed %v) with %s expiring %s, secret %.8s…",
			k.label, got.ID == k.id, got.Managed, csmFromMap(got.Permissions), m.rel(got.ExpiresAt), got.Key)
	}
	k.prev = ""
	if g := r.grace; g != nil && *g > 0 {
		// The server picks the grace end from its own clock: between the
		// readings around the request (never past the key's expiry).
		lo, hi := before.Add(time.Duration(*g)*time.Minute), after.Add(time.Duration(*g)*time.Minute)
		if k.expires != nil && k.expires.Before(hi) {
			lo, hi = *k.expires, *k.expires
		}
		pe := got.PreviousKeyExpiresAt
		if pe == nil || pe.Before(lo.Add(-time.Microsecond)) || pe.After(hi.Add(time.Microsecond)) {
			rt.Fatalf("regenerate of %s with grace %dm: previous_key_expires_at %s, want now+%dm", k.label, *g, m.rel(pe), *g)
		}
		k.prev, k.prevEnd = k.cur, m.at(*pe, m.advanced+time.Duration(*g)*time.Minute)
	} else if got.PreviousKeyExpiresAt != nil {
		rt.Fatalf("regenerate of %s without grace: previous_key_expires_at %s", k.label, m.rel(got.PreviousKeyExpiresAt))
	} else {
		// Kept all the same, dead from the rotation on (issue 18): verify
		// says REVOKED and a leak report true_positive until the next one.
		// The server's clock read during the request is no earlier than
		// before: dead by the next step.
		k.prev, k.prevEnd = k.cur, before
	}
	m.setSecret(k, got.Key)
	actorKind, by := m.actorOf(c)
	m.record(csmEvent{action: "regenerate", key: k, actorKind: actorKind, actorID: by, values: map[string]string{"key_hint": csmHint(got.Key)}})
	m.remember(c, "regenerate", key, csmCreateReq{}, r, got)
}

// probeAction uses any credential on an operation that changes nothing.
func (m *csmModel) probeAction(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	m.probe(rt, c, "probe")
}

func (m *csmModel) advance(rt *rapid.T) {
	if !m.begin() {
		return
	}
	d := rapid.SampledFrom([]time.Duration{time.Minute, 5 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour,
		24 * time.Hour, 3 * 24 * time.Hour, 8 * 24 * time.Hour}).Draw(rt, "advance clock by")
	m.env.Clock.Advance(d)
	m.advanced += d
	rt.Logf("step %d: advance the server's clock by %v", m.steps, d)
}

// ---------------------------------------------------------------------------
// Checks.

// checkObtained holds a successful create or regenerate to rules 1–3,
// whatever the model predicted, so a failure names the broken rule.
func (m *csmModel) checkObtained(rt *rapid.T, c *csmCaller, p *csmPrincipal, perms csmSet, exp *time.Time, now time.Time, op string) {
	if p == nil {
		return // a dead credential got a secret: the status check says so
	}
	if p.grace {
		rt.Fatalf("GRACE SECRET MANAGES KEYS: %s by %s succeeded; want 403/40304", op, c.label)
	}
	if miss := perms.minus(p.perms); len(miss) > 0 {
		rt.Fatalf("POWER GREW: %s by %s obtained a secret holding %s; the caller lacks %s", op, c.label, perms, csmSetOf(miss...))
	}
	if p.isKey && p.expires != nil && (exp == nil || exp.After(*p.expires)) {
		rt.Fatalf("LIFE GREW: %s by %s (expires %s) obtained a secret expiring %s", op, c.label, m.rel(p.expires), m.rel(exp))
	}
}

// checkNetworksObtained holds rule 15: what a caller restricted to networks
// obtained or changed is restricted to a subset of them.
func (m *csmModel) checkNetworksObtained(rt *rapid.T, p *csmPrincipal, networks []string, what string) {
	if p != nil && !csmNetsWithin(networks, p.networks) {
		rt.Fatalf("NETWORKS WIDENED: %s, a caller restricted to %v, succeeded on a key working from %v", what, p.networks, networks)
	}
}

// checkRateObtained holds rule 16: what a caller with its own rate limit
// obtained or changed is limited to no larger a rate.
func (m *csmModel) checkRateObtained(rt *rapid.T, p *csmPrincipal, r *csmRate, what string) {
	if p != nil && !csmRateWithin(r, p.rate) {
		rt.Fatalf("RATE LIMIT GREW: %s, a caller limited to %s, succeeded on a key limited to %s", what, p.rate, r)
	}
}

// csmShownNetworks is allowed_networks as an answer shows it (nil: absent).
func csmShownNetworks(n *[]string) []string {
	if n == nil {
		return nil
	}
	return *n
}

// checkDetails checks details.missing of a 40302: the sorted permissions the
// caller lacks. For an action on an existing key, pass the caller (by): a
// caller without account:api:key:read is told none of the key's permissions
// (no details.missing). Create passes none: it lists the caller's own request.
func (m *csmModel) checkDetails(rt *rapid.T, ae *client.Error, missing []string, by ...*csmPrincipal) {
	if ae.Code != client.CodePrivilegeEscalation {
		return
	}
	if len(by) > 0 && by[0] != nil && !by[0].perms[csmPermRead] {
		if got, has := ae.Details["missing"]; has {
			rt.Fatalf("40302 to a caller that may not read keys lists the key's permissions: details.missing = %v", got)
		}
		return
	}
	got := toStrings(ae.Details["missing"])
	if !slices.Equal(got, missing) {
		rt.Fatalf("40302 details.missing = %v, want %v", got, missing)
	}
}

// ownerStillWorks follows a replaced secret's refusal (40304) with the
// owner's current secret, which must keep working (rule 3).
func (m *csmModel) ownerStillWorks(rt *rapid.T, c *csmCaller, ae *client.Error) {
	if ae.Code != client.CodeReplacedSecret || c.secret == nil {
		return
	}
	k := c.secret.key
	for _, s := range m.secrets {
		if s.key == k && s.token == k.cur {
			m.probe(rt, &csmCaller{token: s.token, secret: s, label: m.describeSecret(s, m.now())}, "the owner's current secret keeps working")
		}
	}
}

// probe regenerates csmNoSuchKey with c and compares with the model.
func (m *csmModel) probe(rt *rapid.T, c *csmCaller, why string) {
	now := m.now()
	want := m.wantProbe(c, now)
	_, err := m.env.Client(c.token).RegenerateAPIKey(ctx, csmNoSuchKey)
	a, _ := csmResult(rt, err, 200)
	m.stats[fmt.Sprintf("probe %d/%d", a.status, a.code)]++
	if why == "probe" {
		rt.Logf("step %d: probe with %s → want %s, got %d/%d", m.steps, c.label, want, a.status, a.code)
	}
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("%s with %s: want %s, got %d/%d", why, c.label, want, a.status, a.code)
	}
	if c.secret != nil {
		m.seen[c.secret] = a
	}
}

// check runs after every step: the store holds what the model says, and every
// secret whose predicted answer changed since last confirmed (plus one other,
// in turn) answers as predicted.
func (m *csmModel) check(rt *rapid.T) {
	if m.idle {
		return
	}
	m.checkStore(rt)
	m.checkAudit(rt)
	m.checkRoot(rt)
	now := m.now()
	var todo []*csmSecret
	for _, s := range m.secrets {
		w := m.wantProbe(&csmCaller{secret: s}, now)
		if last, ok := m.seen[s]; !ok || last != (csmAnswer{w.status, w.code}) {
			todo = append(todo, s)
		}
	}
	if len(m.secrets) > 0 {
		s := m.secrets[m.rr%len(m.secrets)]
		m.rr++
		if !slices.Contains(todo, s) {
			todo = append(todo, s)
		}
	}
	for _, s := range todo {
		m.probe(rt, &csmCaller{token: s.token, secret: s, label: m.describeSecret(s, now)}, "secret authenticates iff alive")
	}
}

// checkStore compares every key of both accounts and both modes with the model.
func (m *csmModel) checkStore(rt *rapid.T) {
	now := m.now()
	for _, k := range m.keys {
		got, err := m.env.Store.Repo(k.mode).GetKey(ctx, k.id)
		if err != nil {
			rt.Fatalf("store: %s: %v", k.label, err)
		}
		var bad []string
		if got.AccountID != k.account || got.Name != k.name || got.Managed != k.managed || got.Deleted != k.deleted ||
			got.Status != csmStoredStatus(k) || (got.Type == apikey.TypePublishable) != k.publishable {
			bad = append(bad, fmt.Sprintf("account %s name %q managed %v deleted %v status %s type %s", m.short(got.AccountID), got.Name, got.Managed, got.Deleted, got.Status, got.Type))
		}
		if !maps.Equal(got.Metadata, k.metadata) {
			bad = append(bad, fmt.Sprintf("metadata %v", got.Metadata))
		}
		if !bytes.Equal(got.SecretHash, csmHash(k.cur)) {
			bad = append(bad, "the current secret is not the last one issued")
		}
		if p := csmFromMap(got.Permissions); !p.equal(k.perms) {
			bad = append(bad, "permissions "+p.String())
		}
		if !csmSameTime(got.ExpiresAt, k.expires) {
			bad = append(bad, "expires "+m.rel(got.ExpiresAt))
		}
		if n := apikey.NetworkStrings(got.AllowedNetworks); !slices.Equal(n, k.networks) {
			bad = append(bad, fmt.Sprintf("allowed_networks %v", n))
		}
		if r := got.RateLimit; (r == nil) != (k.rate == nil) || r != nil && (r.Limit != k.rate.n || r.Window != time.Duration(k.rate.secs)*time.Second) {
			bad = append(bad, fmt.Sprintf("rate limit %+v, want %s", r, k.rate))
		}
		if c := csmStoredCredits(got.Credits, now); !csmSameCredits(c, k.credits.settle(now)) {
			bad = append(bad, fmt.Sprintf("credits %s, want %s", c, k.credits))
		}
		switch {
		case k.prev != "" && now.Before(k.prevEnd):
			if !bytes.Equal(got.PrevSecretHash, csmHash(k.prev)) || got.PrevSecretExpiresAt == nil ||
				got.PrevSecretExpiresAt.Sub(k.prevEnd).Abs() > time.Microsecond {
				bad = append(bad, "the replaced secret in its grace period is not kept until "+m.rel(&k.prevEnd))
			}
		case got.PrevSecretExpiresAt != nil && now.Before(*got.PrevSecretExpiresAt):
			bad = append(bad, "a replaced secret is kept in grace until "+m.rel(got.PrevSecretExpiresAt))
		case k.prev != "" && !bytes.Equal(got.PrevSecretHash, csmHash(k.prev)):
			bad = append(bad, "the replaced secret is not kept (by its hash) until the key rotates again")
		case k.prev == "" && got.PrevSecretHash != nil:
			bad = append(bad, "a key never rotated keeps a previous secret")
		}
		if len(bad) > 0 {
			rt.Fatalf("STORE: %s differs from the model (name %q, deleted %v, %s, metadata %v): %s",
				m.describeKey(k), k.name, k.deleted, csmStoredStatus(k), k.metadata, strings.Join(bad, "; "))
		}
	}
}

// csmResult is an answer's status and code; a transport failure fails the test.
func csmResult(rt *rapid.T, err error, ok int) (csmAnswer, *client.Error) {
	if err == nil {
		return csmAnswer{status: ok}, nil
	}
	var ae *client.Error
	if !errors.As(err, &ae) {
		rt.Fatalf("request failed: %v", err)
	}
	if ae.Code == client.CodeTooManyAuthFailures {
		// The model spends failed authentications freely (dead secrets are
		// probed on purpose): the server under test must not run out.
		rt.Fatalf("429/42901: the failed-authentication budget is too small for this test; raise it in testenv")
	}
	return csmAnswer{ae.StatusCode, ae.Code}, ae
}

func csmHash(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func csmSameTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Equal(*b)
}

// ---------------------------------------------------------------------------
// The key lifecycle: get, list, update, delete, list audit events.

// csmStoredStatus is the status column the model expects.
func csmStoredStatus(k *csmKey) string {
	if k.inactive {
		return apikey.StatusInactive
	}
	return apikey.StatusActive
}

// viewStatus is the status an answer shows: EXPIRED is an ACTIVE key past its
// expiry; a switched-off key shows INACTIVE, expired or not.
func (m *csmModel) viewStatus(k *csmKey, now time.Time) string {
	switch {
	case k.inactive:
		return "INACTIVE"
	case m.expired(k, now):
		return "EXPIRED"
	}
	return "ACTIVE"
}

func (m *csmModel) modeOf(c *csmCaller) apikey.Mode {
	if c.jwt != nil {
		return c.jwt.mode
	}
	return c.secret.key.mode
}

// labelOf names an id in messages without the id itself (random ids would
// make messages differ from one replay to the next).
func (m *csmModel) labelOf(id string) string {
	if k := m.byID[id]; k != nil {
		return k.label
	}
	if strings.HasPrefix(id, "key_") {
		return "a key unknown to the model"
	}
	return id // "bootstrap", a JWT subject
}

var csmEarlierRun = regexp.MustCompile(`^acct_csm[0-9]+_[ab]$`)

// shortPair names a chain (csmPair) in messages.
func (m *csmModel) shortPair(pair string) string {
	mode, acct, _ := strings.Cut(pair, "/")
	if s := m.short(acct); s != acct {
		return s + "/" + mode
	}
	if csmEarlierRun.MatchString(acct) {
		return "an earlier run's account/" + mode
	}
	return acct + "/" + mode
}

// Custom and deleted keys weigh double: the lifecycle is about them (a
// deleted key drawn before any exists falls back to a custom key).
var csmTargetKinds = []string{"custom key", "custom key", "managed secret", "managed publishable", "deleted key", "deleted key", "the caller's own key", "no such key"}

// drawTarget picks the key a get, update or delete names: mostly one in the
// caller's account and mode, else any of the run's (another account or
// mode), or none (nil: csmNoSuchKey).
func (m *csmModel) drawTarget(rt *rapid.T, c *csmCaller) *csmKey {
	kind := rapid.SampledFrom(csmTargetKinds).Draw(rt, "target kind")
	if kind == "the caller's own key" {
		if c.secret != nil {
			return c.secret.key
		}
		kind = "custom key"
	}
	_, own, _ := m.grantOf(c)
	mode := m.modeOf(c)
	scope := rapid.SampledFrom([]string{"the caller's account and mode", "the caller's account and mode", "any account and mode"}).Draw(rt, "target scope")
	if kind == "no such key" {
		return nil
	}
	// The kind drawn, else (none yet) a custom key, else any key in scope.
	for _, kind := range []string{kind, "custom key", "any"} {
		var cands []*csmKey
		for _, k := range m.keys {
			if scope != "any account and mode" && (k.account != own || k.mode != mode) {
				continue
			}
			if (kind == "custom key" && !k.managed && !k.deleted) || (kind == "managed secret" && k.managed && !k.publishable) ||
				(kind == "managed publishable" && k.publishable) || (kind == "deleted key" && k.deleted) || kind == "any" {
				cands = append(cands, k)
			}
		}
		if len(cands) > 0 {
			return cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "target #")]
		}
	}
	return nil // a JWT's scope on an account that does not exist
}

func (m *csmModel) targetName(k *csmKey) string {
	if k == nil {
		return "no such key"
	}
	state := ""
	switch {
	case k.deleted:
		state = " (deleted)"
	case k.inactive:
		state = " (switched off)"
	}
	return fmt.Sprintf("%s %q%s", m.describeKey(k), k.name, state)
}

func (m *csmModel) must(rt *rapid.T, what string, err error) {
	if err != nil {
		rt.Fatalf("%s: request failed: %v", what, err)
	}
}

// rawAnswer is the status and code of a raw-client answer, whose body it
// first scans for secrets (rule 7).
func (m *csmModel) rawAnswer(rt *rapid.T, what string, hr *http.Response, body []byte) (csmAnswer, *client.Error) {
	m.scan(rt, what, body)
	if err := answer(hr, body); err != nil {
		return csmResult(rt, err, 0)
	}
	return csmAnswer{status: hr.StatusCode}, nil
}

// scan fails if b holds a secret the model knows, its random part or its hash.
func (m *csmModel) scan(rt *rapid.T, where string, b []byte) {
	for _, n := range m.needles {
		if bytes.Contains(b, []byte(n.s)) {
			rt.Fatalf("SECRET LEAKED: the answer to %s holds %s", where, n.what)
		}
	}
}

func (m *csmModel) expect(rt *rapid.T, what string, want csmWant, a csmAnswer) {
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("%s: want %s, got %d/%d", what, want, a.status, a.code)
	}
}

// checkChanged holds a successful update or delete to rules 1–3 whatever
// the model predicted, so a failure names the broken rule.
func (m *csmModel) checkChanged(rt *rapid.T, what string, p *csmPrincipal, k *csmKey) {
	if p == nil || k == nil {
		return // a dead credential or no key: the status check says so
	}
	if p.grace {
		rt.Fatalf("GRACE SECRET MANAGES KEYS: %s succeeded; want 403/40304", what)
	}
	if miss := k.perms.minus(p.perms); len(miss) > 0 {
		rt.Fatalf("POWER GREW: %s succeeded on a key holding %s the caller lacks", what, csmSetOf(miss...))
	}
	if p.isKey && p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) {
		rt.Fatalf("LIFE GREW: %s (caller expires %s) succeeded on a key expiring %s", what, m.rel(p.expires), m.rel(k.expires))
	}
	m.checkNetworksObtained(rt, p, k.networks, what)
	m.checkRateObtained(rt, p, k.rate, what)
	now := m.now()
	m.checkCreditsObtained(rt, p, k.credits.settle(now), now, what)
}

// csmWrite says which write (update, delete) by whom an answer's view
// answers; reads pass none.
type csmWrite struct {
	by       *csmPrincipal
	metadata bool // the request set metadata
}

// checkView compares a key as an answer shows it with the model. The answer
// to a write by a caller without account:api:key:read shows no more than the
// write changed: metadata only when it set them, no last use.
func (m *csmModel) checkView(rt *rapid.T, what string, k *csmKey, v *client.APIKeyView, now time.Time, write ...csmWrite) {
	var bad []string
	wantMeta := k.metadata
	if len(write) > 0 && write[0].by != nil && !write[0].by.perms[csmPermRead] {
		if !write[0].metadata {
			wantMeta = nil
		}
		if v.LastUsedAt != nil || v.LastUsedIP != nil {
			bad = append(bad, "last use shown to a caller that may not read keys")
		}
		if v.Metadata == nil {
			bad = append(bad, "metadata null, want {}")
		}
	}
	if v.ID != k.id || v.AccountID != k.account {
		bad = append(bad, "it shows "+m.labelOf(v.ID)+" of "+m.short(v.AccountID))
	}
	if v.Name != k.name {
		bad = append(bad, fmt.Sprintf("name %q, want %q", v.Name, k.name))
	}
	if v.Deleted != k.deleted {
		bad = append(bad, fmt.Sprintf("deleted %v", v.Deleted))
	}
	if want := m.viewStatus(k, now); string(v.Status) != want {
		bad = append(bad, fmt.Sprintf("status %s, want %s", v.Status, want))
	}
	if v.Managed != k.managed || (v.Type == client.TypePublishable) != k.publishable {
		bad = append(bad, fmt.Sprintf("managed %v type %s", v.Managed, v.Type))
	}
	if !csmSameTime(v.ExpiresAt, k.expires) {
		bad = append(bad, "expires "+m.rel(v.ExpiresAt))
	}
	if p := csmFromMap(v.Permissions); !p.equal(k.perms) {
		bad = append(bad, "permissions "+p.String())
	}
	if !maps.Equal(v.Metadata, wantMeta) {
		bad = append(bad, fmt.Sprintf("metadata %v, want %v", v.Metadata, wantMeta))
	}
	if v.KeyHint == nil || *v.KeyHint != csmHint(k.cur) {
		bad = append(bad, "key_hint is not the current secret's")
	}
	if v.CreatedBy.ID != k.creator {
		bad = append(bad, "created_by "+m.labelOf(v.CreatedBy.ID)+", want "+m.labelOf(k.creator))
	}
	if n := csmShownNetworks(v.AllowedNetworks); !slices.Equal(n, k.networks) {
		bad = append(bad, fmt.Sprintf("allowed_networks %v, want %v", n, k.networks))
	}
	if r := csmShownRate(v.RateLimit); !csmSameRate(r, k.rate) {
		bad = append(bad, fmt.Sprintf("rate_limit %s, want %s", r, k.rate))
	}
	if c := csmShownCredits(v.Credits); !csmSameCredits(c, k.credits.settle(now)) {
		bad = append(bad, fmt.Sprintf("credits %s, want %s", c, k.credits))
	}
	if len(bad) > 0 {
		rt.Fatalf("%s: the answer differs from the model: %s", what, strings.Join(bad, "; "))
	}
}

// get reads a key (any kind, incl. another account's or mode's, deleted, none).
func (m *csmModel) get(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	k := m.drawTarget(rt, c)
	id := csmNoSuchKey
	if k != nil {
		id = k.id
	}
	now := m.now()
	want := m.wantGet(c, k, now)
	what := fmt.Sprintf("get %s by %s", m.targetName(k), c.label)
	res, err := m.env.Client(c.token).Raw().GetAPIKeyWithResponse(ctx, id)
	m.must(rt, what, err)
	a, ae := m.rawAnswer(rt, what, res.HTTPResponse, res.Body)
	m.stats[fmt.Sprintf("get %d/%d", a.status, a.code)]++
	rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
	m.expect(rt, what, want, a)
	if ae != nil {
		m.ownerStillWorks(rt, c, ae)
		return
	}
	m.checkView(rt, what, k, clientData[client.APIKeyView](rt, res.Body), now)
}

// wantGet: gate → 404 (unknown, another account or mode) → 200 (deleted
// keys stay readable, marked deleted).
func (m *csmModel) wantGet(c *csmCaller, k *csmKey, now time.Time) csmWant {
	p, w := m.gate(c, csmPermRead, now)
	if w != nil {
		return *w
	}
	if k == nil || k.mode != p.mode || !p.canActOn(k.account) {
		return csmWant{404, client.CodeKeyNotFound, "no such key for this credential"}
	}
	if k.deleted {
		return csmWant{200, 0, "deleted keys stay readable"}
	}
	return csmWant{200, 0, "read"}
}

// wantAccountRead is the order of checks of both lists: gate → 40301
// (another account) → 40401 (no such account) → 200.
func (m *csmModel) wantAccountRead(c *csmCaller, need, account string, now time.Time) csmWant {
	p, w := m.gate(c, need, now)
	if w != nil {
		return *w
	}
	if !p.canActOn(account) {
		return csmWant{403, client.CodeAccountForbidden, "may not act on " + m.short(account)}
	}
	if account == m.ghost {
		return csmWant{404, client.CodeAccountNotFound, "no such account"}
	}
	return csmWant{200, 0, "listed"}
}

type csmListReq struct {
	account, status, typ, createdBy string // "": any
	managed, deleted                *bool
	limit                           int // 0: the default (20)
}

func (m *csmModel) describeList(r csmListReq) string {
	var f []string
	if r.status != "" {
		f = append(f, "status="+r.status)
	}
	if r.typ != "" {
		f = append(f, "type="+r.typ)
	}
	if r.managed != nil {
		f = append(f, fmt.Sprintf("managed=%v", *r.managed))
	}
	if r.createdBy != "" {
		f = append(f, "created_by="+m.labelOf(r.createdBy))
	}
	if r.deleted != nil {
		f = append(f, fmt.Sprintf("deleted=%v", *r.deleted))
	}
	if r.limit > 0 {
		f = append(f, fmt.Sprintf("limit=%d", r.limit))
	}
	return strings.Join(f, " ")
}

// listed says whether a list with r's filters shows k.
func (m *csmModel) listed(k *csmKey, r csmListReq, mode apikey.Mode, now time.Time) bool {
	return k.account == r.account && k.mode == mode && k.deleted == (r.deleted != nil && *r.deleted) &&
		(r.status == "" || m.viewStatus(k, now) == r.status) && (r.typ == "" || (r.typ == "PUBLISHABLE") == k.publishable) &&
		(r.managed == nil || *r.managed == k.managed) && (r.createdBy == "" || r.createdBy == k.creator)
}

// list lists an account's keys (own or not), sometimes filtered, following
// every page; the keys listed are exactly the model's, in (created_at, id) order.
func (m *csmModel) list(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	_, own, _ := m.grantOf(c)
	r := csmListReq{account: rapid.SampledFrom([]string{own, own, own, m.acctA, m.acctB, m.ghost}).Draw(rt, "account")}
	for _, f := range rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"status", "type", "managed", "created_by", "deleted"}), 0, 3, rapid.ID[string]).Draw(rt, "filters") {
		switch f {
		case "status":
			r.status = rapid.SampledFrom([]string{"ACTIVE", "INACTIVE", "EXPIRED"}).Draw(rt, "status")
		case "type":
			r.typ = rapid.SampledFrom([]string{"SECRET", "PUBLISHABLE"}).Draw(rt, "type")
		case "managed":
			b := rapid.Bool().Draw(rt, "managed")
			r.managed = &b
		case "created_by":
			switch rapid.SampledFrom([]string{"the caller", "bootstrap", "a key of the run"}).Draw(rt, "created_by") {
			case "the caller":
				_, r.createdBy = m.actorOf(c)
			case "bootstrap":
				r.createdBy = "bootstrap"
			default:
				r.createdBy = m.keys[rapid.IntRange(0, len(m.keys)-1).Draw(rt, "created_by #")].id
			}
		case "deleted":
			b := rapid.Bool().Draw(rt, "deleted")
			r.deleted = &b
		}
	}
	r.limit = rapid.SampledFrom([]int{0, 100, 3}).Draw(rt, "limit")
	params := oapi.ListAPIKeysParams{AccountID: r.account, Managed: r.managed, Deleted: r.deleted}
	if r.status != "" {
		s := oapi.ListAPIKeysParamsStatus(r.status)
		params.Status = &s
	}
	if r.typ != "" {
		t := oapi.ListAPIKeysParamsType(r.typ)
		params.Type = &t
	}
	if r.createdBy != "" {
		params.CreatedBy = &r.createdBy
	}
	size := 20
	if r.limit > 0 {
		params.Limit, size = &r.limit, r.limit
	}

	now := m.now()
	want := m.wantAccountRead(c, csmPermRead, r.account, now)
	what := fmt.Sprintf("list %s [%s] by %s", m.short(r.account), m.describeList(r), c.label)
	cl := m.env.Client(c.token)
	var got []client.APIKeyView
	for page := 1; ; page++ {
		res, err := cl.Raw().ListAPIKeysWithResponse(ctx, &params)
		m.must(rt, what, err)
		a, ae := m.rawAnswer(rt, what, res.HTTPResponse, res.Body)
		if page == 1 {
			m.stats[fmt.Sprintf("list %d/%d", a.status, a.code)]++
			rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
			m.expect(rt, what, want, a)
			if ae != nil {
				m.ownerStillWorks(rt, c, ae)
				return
			}
		} else if a.status != 200 {
			rt.Fatalf("%s: page %d answered %d/%d", what, page, a.status, a.code)
		}
		d := *clientData[client.APIKeyPage](rt, res.Body)
		if len(d.Data) > size || d.HasMore != (d.NextCursor != nil) || d.HasMore && len(d.Data) == 0 {
			rt.Fatalf("%s: page %d holds %d keys (limit %d), has_more %v, next_cursor set %v", what, page, len(d.Data), size, d.HasMore, d.NextCursor != nil)
		}
		got = append(got, d.Data...)
		if !d.HasMore {
			break
		}
		params.Cursor = d.NextCursor
	}
	p, _ := m.authenticate(c, now)
	expected := map[string]*csmKey{}
	for _, k := range m.keys {
		if m.listed(k, r, p.mode, now) {
			expected[k.id] = k
		}
	}
	for i, v := range got {
		if i > 0 && (v.CreatedAt.Before(got[i-1].CreatedAt) || v.CreatedAt.Equal(got[i-1].CreatedAt) && v.ID <= got[i-1].ID) {
			rt.Fatalf("%s: %s listed after %s: not in (created_at, id) order, or twice", what, m.labelOf(v.ID), m.labelOf(got[i-1].ID))
		}
		k := expected[v.ID]
		if k == nil {
			rt.Fatalf("%s: lists %s, which the model leaves out", what, m.labelOf(v.ID))
		}
		m.checkView(rt, what, k, &got[i], now)
		delete(expected, v.ID)
	}
	if len(expected) > 0 {
		var left []string
		for _, k := range expected {
			left = append(left, k.label)
		}
		sort.Strings(left)
		rt.Fatalf("%s: leaves out %s", what, strings.Join(left, ", "))
	}
}

type csmUpdateReq struct {
	name     *string
	metadata map[string]string
	hasMeta  bool
	status   string // "", ACTIVE or INACTIVE
	expires  *time.Time
	networks *[]string // nil: absent; empty: lift the restriction
	sentRate *client.RateLimit
	rate     *csmRate // sentRate as the model holds it
	// credits are set (credits), or add is added (credits_add); not both.
	credits     *csmCredits
	sentCredits *client.Credits
	add         *int64
}

// nets is the networks the update sets, as stored.
func (r csmUpdateReq) nets() []string {
	if r.networks == nil {
		return nil
	}
	return csmCanonical(*r.networks)
}

func (m *csmModel) describeUpdate(r csmUpdateReq) string {
	var f []string
	if r.status != "" {
		f = append(f, "status "+r.status)
	}
	if r.name != nil {
		f = append(f, fmt.Sprintf("name %q", *r.name))
	}
	if r.expires != nil {
		f = append(f, "expires_at "+m.rel(r.expires))
	}
	if r.hasMeta {
		f = append(f, fmt.Sprintf("metadata %v", r.metadata))
	}
	if r.networks != nil {
		f = append(f, fmt.Sprintf("allowed_networks %v", *r.networks))
	}
	if r.rate != nil {
		f = append(f, "rate_limit "+r.rate.String())
	}
	if r.credits != nil {
		f = append(f, "credits "+r.credits.String())
	}
	if r.add != nil {
		f = append(f, fmt.Sprintf("credits_add %d", *r.add))
	}
	if len(f) == 0 {
		return "{}"
	}
	return strings.Join(f, ", ")
}

var csmUpdateFields = []string{"status", "name", "expires_at", "metadata", "allowed_networks", "rate_limit", "credits", "credits_add"}

// drawUpdate draws an update body: one field or more (or none, which the
// contract refuses), with values near the interesting edges.
func (m *csmModel) drawUpdate(rt *rapid.T, c *csmCaller, k *csmKey, now time.Time) csmUpdateReq {
	var r csmUpdateReq
	// An empty body (refused) one time in nine.
	fields := []string{rapid.SampledFrom(append(slices.Concat(csmUpdateFields, csmUpdateFields), "nothing")).Draw(rt, "update field")}
	if fields[0] == "nothing" {
		return r
	}
	fields = append(fields, rapid.SliceOfNDistinct(rapid.SampledFrom(csmUpdateFields), 0, 2, rapid.ID[string]).Draw(rt, "more fields")...)
	for _, f := range fields {
		switch f {
		case "status":
			r.status = rapid.SampledFrom([]string{"INACTIVE", "ACTIVE"}).Draw(rt, "status")
		case "name":
			var n string
			switch rapid.SampledFrom([]string{"from the pool", "another key's", "its own"}).Draw(rt, "name kind") {
			case "another key's":
				acct, mode := m.acctA, m.modeOf(c)
				if k != nil {
					acct, mode = k.account, k.mode
				}
				var others []*csmKey
				for _, o := range m.keys {
					if o != k && o.account == acct && o.mode == mode {
						others = append(others, o)
					}
				}
				n = others[rapid.IntRange(0, len(others)-1).Draw(rt, "name of key #")].name
			case "its own":
				if k != nil {
					n = k.name
					break
				}
				fallthrough
			default:
				n = rapid.SampledFrom(csmNames).Draw(rt, "name")
			}
			r.name = &n
		case "expires_at":
			r.expires = m.drawNewExpiry(rt, c, k, now)
		case "allowed_networks":
			var own []string
			if c.secret != nil {
				own = c.secret.key.networks
			}
			if r.networks = m.drawNetworks(rt, own, true); r.networks == nil {
				r.networks = &[]string{}
			}
		case "rate_limit":
			var own *csmRate
			if c.secret != nil {
				own = c.secret.key.rate
			}
			if r.sentRate, r.rate = m.drawRate(rt, own); r.rate == nil {
				r.sentRate, r.rate = &client.RateLimit{Limit: 1000, Window: "1s"}, &csmRate{n: 1000, secs: 1}
			}
		case "credits":
			if r.add != nil {
				break // not both
			}
			var own *csmCredits
			if c.secret != nil {
				own = c.secret.key.credits
			}
			r.credits = m.drawCredits(rt, own, true, now)
			r.sentCredits = r.credits.sent(rt)
		case "credits_add":
			if r.credits != nil {
				break
			}
			n := rapid.SampledFrom([]int64{1, 2, 5, 40}).Draw(rt, "credits_add")
			r.add = &n
		case "metadata":
			r.hasMeta = true
			r.metadata = map[string]string{}
			if v := rapid.SampledFrom([]string{"", "a", "b"}).Draw(rt, "metadata team"); v != "" {
				r.metadata["team"] = v
			}
		}
	}
	return r
}

// drawNewExpiry picks an expires_at for an update: around the key's expiry
// (now+3h30s for a key that never expires), around the caller's (now+2h30s
// for one that never expires), or around now. Each lies 30 s off the whole
// minutes the clock moves by.
func (m *csmModel) drawNewExpiry(rt *rapid.T, c *csmCaller, k *csmKey, now time.Time) *time.Time {
	type ref struct {
		t     time.Time
		v     time.Duration
		known bool // v is the virtual offset of t (rel can show it)
	}
	around := func(exp *time.Time, d time.Duration) ref {
		if exp == nil {
			return ref{now.Add(d), m.advanced + d, true}
		}
		v, ok := m.virt[exp.UnixMicro()]
		return ref{*exp, v, ok}
	}
	var kexp *time.Time
	if k != nil {
		kexp = k.expires
	}
	_, _, cexp := m.grantOf(c)
	var base ref
	var d time.Duration
	switch rapid.SampledFrom([]string{"1m before the key's", "the key's", "1m after the key's", "the caller's", "1m after the caller's",
		"in 5m", "in 1d", "in the past", "just past 9999-12-31T23:59:59Z"}).Draw(rt, "new expires_at") {
	case "1m before the key's":
		base, d = around(kexp, 3*time.Hour+30*time.Second), -time.Minute
	case "the key's":
		base = around(kexp, 3*time.Hour+30*time.Second)
	case "1m after the key's":
		base, d = around(kexp, 3*time.Hour+30*time.Second), time.Minute
	case "the caller's":
		base = around(cexp, 2*time.Hour+30*time.Second)
	case "1m after the caller's":
		base, d = around(cexp, 2*time.Hour+30*time.Second), time.Minute
	case "in 5m":
		base = around(nil, 5*time.Minute+30*time.Second)
	case "in 1d":
		base = around(nil, 24*time.Hour+30*time.Second)
	case "in the past":
		base = around(nil, -time.Hour-30*time.Second)
	default:
		base = ref{t: csmMaxExpiry.Add(time.Second)}
	}
	e := base.t.Add(d).UTC().Truncate(time.Microsecond)
	if e.After(csmMaxExpiry) {
		// Past the contract's limit but still in year 9999 (JSON holds no later year).
		e = csmMaxExpiry.Add(500 * time.Millisecond)
		return &e
	}
	if base.known {
		m.at(e, base.v+d)
	}
	return &e
}

// update changes a key: disable, enable, rename (onto a taken name too),
// move its expiry (earlier, later, into the past), replace its metadata.
func (m *csmModel) update(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	k := m.drawTarget(rt, c)
	m.updateWith(rt, c, k, m.drawUpdate(rt, c, k, m.now()))
}

// updateWith has c update k (nil: no such key) as r asks and follows the model.
func (m *csmModel) updateWith(rt *rapid.T, c *csmCaller, k *csmKey, r csmUpdateReq) {
	id := csmNoSuchKey
	if k != nil {
		id = k.id
	}
	body := client.UpdateAPIKeyRequest{Name: r.name, ExpiresAt: r.expires, AllowedNetworks: r.networks, RateLimit: r.sentRate,
		Credits: r.sentCredits, CreditsAdd: r.add}
	if r.hasMeta {
		md := client.Metadata(r.metadata)
		body.Metadata = &md
	}
	if r.status != "" {
		s := client.UpdateStatus(r.status)
		body.Status = &s
	}

	now := m.now()
	want := m.wantUpdate(c, k, r, now)
	p, _ := m.authenticate(c, now)
	what := fmt.Sprintf("update %s by %s: %s", m.targetName(k), c.label, m.describeUpdate(r))
	res, err := m.env.Client(c.token).Raw().UpdateAPIKeyWithBodyWithResponse(ctx, id, "application/json", jsonReader(rt, body))
	m.must(rt, what, err)
	a, ae := m.rawAnswer(rt, what, res.HTTPResponse, res.Body)
	m.stats[fmt.Sprintf("update %d/%d", a.status, a.code)]++
	rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
	if a.status == 200 {
		m.checkChanged(rt, what, p, k)
	}
	m.expect(rt, what, want, a)
	if ae != nil {
		if k != nil && p != nil {
			m.checkDetails(rt, ae, k.perms.minus(p.perms), p)
		}
		m.ownerStillWorks(rt, c, ae)
		return
	}
	m.applyUpdate(c, k, r)
	m.checkView(rt, what, k, clientData[client.APIKeyView](rt, res.Body), now, csmWrite{by: p, metadata: r.hasMeta})
}

// wantUpdate follows update's order of checks: gate → 400 (no field) → 404
// → 40302 (power) → 40305 (life: the key as it stands must not outlive an
// expiring key caller) → 40903 (deleted) → 42205 (a managed key's name and
// expiry; switching the managed secret key off) → 42202 (expiry not in the future or past 9999) → 42206
// (expiry later than the key's) → 40900 (name held by another key neither
// deleted nor expired) → 200.
func (m *csmModel) wantUpdate(c *csmCaller, k *csmKey, r csmUpdateReq, now time.Time) csmWant {
	p, w := m.gate(c, csmPermUpdate, now)
	if w != nil {
		return *w
	}
	if r.name == nil && !r.hasMeta && r.status == "" && r.expires == nil && r.networks == nil && r.rate == nil && r.credits == nil && r.add == nil {
		return csmWant{400, client.CodeValidationFailed, "an update names at least one field"}
	}
	if k == nil || k.mode != p.mode || !p.canActOn(k.account) {
		return csmWant{404, client.CodeKeyNotFound, "no such key for this credential"}
	}
	if miss := k.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, client.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) {
		return csmWant{403, client.CodeLifetimeEscalation, "life never grows: the key outlives the caller"}
	}
	if !csmNetsWithin(k.networks, p.networks) {
		return csmWant{403, client.CodeNetworkEscalation, "networks never widen: the key works beyond the caller's networks"}
	}
	if !csmRateWithin(k.rate, p.rate) {
		return csmWant{403, client.CodeRateLimitEscalation, "rate limits never grow: the key's exceeds the caller's"}
	}
	own := p.creditsAt(now)
	if !csmCreditsWithin(k.credits.settle(now), own) {
		return csmWant{403, client.CodeCreditEscalation, "credits never grow: the key has more than the caller"}
	}
	if r.networks != nil && !csmNetsWithin(r.nets(), p.networks) {
		return csmWant{403, client.CodeNetworkEscalation, "networks never widen: the update sets networks beyond the caller's"}
	}
	if r.rate != nil && !csmRateWithin(r.rate, p.rate) {
		return csmWant{403, client.CodeRateLimitEscalation, "rate limits never grow: the update sets a larger one than the caller's"}
	}
	if r.add != nil && k.credits == nil {
		return csmWant{422, client.CodeCreditsInvalid, "credits_add is only for a key with credits"}
	}
	if n := r.newCredits(k, now); n != nil && !csmCreditsWithin(n, own) {
		return csmWant{403, client.CodeCreditEscalation, "credits never grow: the update gives the key more than the caller has"}
	}
	if k.deleted {
		return csmWant{409, client.CodeKeyDeleted, "a deleted key does not change"}
	}
	if k.managed && (r.name != nil || r.expires != nil) {
		return csmWant{422, client.CodeManagedKeyFixed, "a managed key's name and expiry are fixed"}
	}
	if k.managed && !k.publishable && r.status == "INACTIVE" {
		return csmWant{422, client.CodeManagedKeyFixed, "the managed secret key is the account's root credential: never switched off"}
	}
	if k.managed && !k.publishable && (len(r.nets()) > 0 || r.rate != nil || r.credits != nil) {
		return csmWant{422, client.CodeManagedKeyFixed, "the managed secret key is the account's root credential: never restricted to networks"}
	}
	if e := r.expires; e != nil {
		if !e.After(now) || e.After(csmMaxExpiry) {
			return csmWant{422, client.CodeInvalidExpiry, "expires_at not in the future or past 9999"}
		}
		if k.expires != nil && e.After(*k.expires) {
			return csmWant{422, client.CodeExpiryExtended, "expires_at only moves earlier"}
		}
	}
	if r.name != nil && *r.name != k.name {
		if h := m.nameHolder(k.account, k.mode, *r.name, k, now); h != nil {
			return csmWant{409, client.CodeDuplicateName, "name taken by " + h.label}
		}
	}
	return csmWant{200, 0, "updated"}
}

// applyUpdate makes a successful update's changes in the model and expects
// one event naming them, or none when nothing changed.
func (m *csmModel) applyUpdate(c *csmCaller, k *csmKey, r csmUpdateReq) {
	var changes []string
	values := map[string]string{}
	action := "update"
	if r.name != nil && *r.name != k.name {
		k.name, values["name"] = *r.name, *r.name
		changes = append(changes, "name")
	}
	if r.hasMeta && !maps.Equal(r.metadata, k.metadata) {
		k.metadata = r.metadata
		changes = append(changes, "metadata")
	}
	if r.expires != nil && !csmSameTime(r.expires, k.expires) {
		k.expires, values["expires_at"] = r.expires, r.expires.UTC().Format(time.RFC3339Nano)
		changes = append(changes, "expires_at")
		if k.prev != "" && k.prevEnd.After(*r.expires) {
			k.prevEnd = *r.expires // a replaced secret never outlives its key
		}
	}
	if r.networks != nil && !slices.Equal(r.nets(), k.networks) {
		k.networks = r.nets()
		changes = append(changes, "allowed_networks")
	}
	if r.rate != nil && !csmSameRate(r.rate, k.rate) {
		k.rate = r.rate
		changes = append(changes, "rate_limit")
	}
	now := m.now()
	if n := r.newCredits(k, now); n != nil && !csmSameCredits(n, k.credits.settle(now)) {
		k.credits, values["credits"] = n, n.auditValue()
		changes = append(changes, "credits")
		if r.add != nil {
			values["credits_added"] = fmt.Sprint(*r.add)
			changes = append(changes, "credits_added")
		}
	}
	if r.status != "" && (r.status == "INACTIVE") != k.inactive {
		k.inactive, values["status"] = r.status == "INACTIVE", r.status
		changes = append(changes, "status")
		action = map[string]string{"INACTIVE": "disable", "ACTIVE": "enable"}[r.status]
	}
	if len(changes) == 0 {
		return // nothing changed: nothing recorded
	}
	sort.Strings(changes)
	kind, by := m.actorOf(c)
	m.record(csmEvent{action: action, key: k, actorKind: kind, actorID: by, changes: changes, values: values})
}

// delete revokes a key (custom, managed, already deleted, another account's
// or mode's, none), sometimes twice in a row.
func (m *csmModel) delete(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	k := m.drawTarget(rt, c)
	times := 1
	if rapid.Bool().Draw(rt, "delete twice") {
		times = 2
	}
	for n := 1; n <= times; n++ {
		m.deleteOnce(rt, c, k, n)
	}
}

func (m *csmModel) deleteOnce(rt *rapid.T, c *csmCaller, k *csmKey, n int) {
	id := csmNoSuchKey
	if k != nil {
		id = k.id
	}
	now := m.now()
	want := m.wantDelete(c, k, now)
	p, _ := m.authenticate(c, now)
	what := fmt.Sprintf("delete #%d of %s by %s", n, m.targetName(k), c.label)
	res, err := m.env.Client(c.token).Raw().DeleteAPIKeyWithResponse(ctx, id)
	m.must(rt, what, err)
	a, ae := m.rawAnswer(rt, what, res.HTTPResponse, res.Body)
	m.stats[fmt.Sprintf("delete %d/%d", a.status, a.code)]++
	rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
	if a.status == 200 && k != nil && !k.deleted {
		m.checkChanged(rt, what, p, k)
	}
	m.expect(rt, what, want, a)
	if ae != nil {
		if k != nil && p != nil {
			m.checkDetails(rt, ae, k.perms.minus(p.perms), p)
		}
		m.ownerStillWorks(rt, c, ae)
		return
	}
	if !k.deleted {
		k.deleted = true
		if k.prev != "" && now.Before(k.prevEnd) { // kept, its grace ended: REVOKED like the key
			k.prevEnd = now
		}
		kind, by := m.actorOf(c)
		m.record(csmEvent{action: "delete", key: k, actorKind: kind, actorID: by, changes: []string{"deleted"},
			values: map[string]string{"deleted": "true"}})
	}
	m.checkView(rt, what, k, clientData[client.APIKeyView](rt, res.Body), now, csmWrite{by: p})
}

// wantDelete follows delete's order of checks: gate → 404 → 40302 (power)
// → 40305 (life) → 200 when already deleted (the key as it is, nothing
// recorded) → 42204 (managed) → 200.
func (m *csmModel) wantDelete(c *csmCaller, k *csmKey, now time.Time) csmWant {
	p, w := m.gate(c, csmPermDelete, now)
	if w != nil {
		return *w
	}
	if k == nil || k.mode != p.mode || !p.canActOn(k.account) {
		return csmWant{404, client.CodeKeyNotFound, "no such key for this credential"}
	}
	if miss := k.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, client.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) {
		return csmWant{403, client.CodeLifetimeEscalation, "life never grows: the key outlives the caller"}
	}
	if !csmNetsWithin(k.networks, p.networks) {
		return csmWant{403, client.CodeNetworkEscalation, "networks never widen: the key works beyond the caller's networks"}
	}
	if !csmRateWithin(k.rate, p.rate) {
		return csmWant{403, client.CodeRateLimitEscalation, "rate limits never grow: the key's exceeds the caller's"}
	}
	if !csmCreditsWithin(k.credits.settle(now), p.creditsAt(now)) {
		return csmWant{403, client.CodeCreditEscalation, "credits never grow: the key has more than the caller"}
	}
	if k.deleted {
		return csmWant{200, 0, "already deleted: answered as it is"}
	}
	if k.managed {
		return csmWant{422, client.CodeManagedKeyNotDeletable, "managed keys are never deleted"}
	}
	return csmWant{200, 0, "deleted"}
}

var csmAuditActions = []string{"create", "regenerate", "update", "disable", "enable", "delete", "bootstrap"}

// listAudit reads an account's audit events (own or not), sometimes
// filtered by key or action: the first page is the model's log, newest first.
func (m *csmModel) listAudit(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	_, own, _ := m.grantOf(c)
	account := rapid.SampledFrom([]string{own, own, own, m.acctA, m.acctB, m.ghost}).Draw(rt, "account")
	params := oapi.ListAuditEventsParams{AccountID: account}
	var byKey *csmKey
	byAction, filter := "", ""
	switch rapid.SampledFrom([]string{"none", "key_id", "action"}).Draw(rt, "audit filter") {
	case "key_id":
		byKey = m.keys[rapid.IntRange(0, len(m.keys)-1).Draw(rt, "key_id #")]
		params.KeyID, filter = &byKey.id, " key_id="+byKey.label
	case "action":
		byAction = rapid.SampledFrom(csmAuditActions).Draw(rt, "action")
		a := oapi.AuditAction(byAction)
		params.Action, filter = &a, " action="+byAction
	}
	size := 20
	if limit := rapid.SampledFrom([]int{0, 100, 3}).Draw(rt, "limit"); limit > 0 {
		params.Limit, size = &limit, limit
		filter += fmt.Sprintf(" limit=%d", limit)
	}

	now := m.now()
	want := m.wantAccountRead(c, csmPermAudit, account, now)
	what := fmt.Sprintf("list audit events of %s [%s] by %s", m.short(account), strings.TrimSpace(filter), c.label)
	res, err := m.env.Client(c.token).Raw().ListAuditEventsWithResponse(ctx, &params)
	m.must(rt, what, err)
	a, ae := m.rawAnswer(rt, what, res.HTTPResponse, res.Body)
	m.stats[fmt.Sprintf("audit %d/%d", a.status, a.code)]++
	rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
	m.expect(rt, what, want, a)
	if ae != nil {
		m.ownerStillWorks(rt, c, ae)
		return
	}
	p, _ := m.authenticate(c, now)
	log := m.log[csmPair(account, p.mode)]
	var idx []int // the log's events the page shows, newest first
	for i := len(log) - 1; i >= 0; i-- {
		if (byKey == nil || log[i].key == byKey) && (byAction == "" || log[i].action == byAction) {
			idx = append(idx, i)
		}
	}
	more := len(idx) > size
	if more {
		idx = idx[:size]
	}
	d := *clientData[client.AuditEventPage](rt, res.Body)
	if len(d.Data) != len(idx) || d.HasMore != more || (d.NextCursor != nil) != more {
		rt.Fatalf("%s: %d events (has_more %v), the model %d (has_more %v)", what, len(d.Data), d.HasMore, len(idx), more)
	}
	for j, i := range idx {
		got, e := d.Data[j], log[i]
		if got.Seq != i+1 || string(got.Action) != e.action || got.KeyID != e.key.id || string(got.Actor.Kind) != e.actorKind ||
			got.Actor.ID != e.actorID || got.AccountID != account || string(got.Mode) != string(p.mode) {
			rt.Fatalf("%s: event %d is #%d %s of %s by %s %s; the model's is #%d %s", what, j+1, got.Seq, got.Action,
				m.labelOf(got.KeyID), got.Actor.Kind, m.labelOf(got.Actor.ID), i+1, m.describeEvent(e))
		}
	}
}

func (m *csmModel) describeEvent(e csmEvent) string {
	s := fmt.Sprintf("%s of %s by %s %s", e.action, e.key.label, e.actorKind, m.labelOf(e.actorID))
	if e.changes != nil {
		s += " changing " + strings.Join(e.changes, ",")
	}
	return s
}

func (m *csmModel) describeStored(e audit.Event) string {
	changes := slices.Sorted(maps.Keys(e.Changes))
	return fmt.Sprintf("%s of %s by %s %s changing %s", e.Action, m.labelOf(e.KeyID), e.Actor.Kind, m.labelOf(e.Actor.ID), strings.Join(changes, ","))
}

// ---------------------------------------------------------------------------
// The audit trail.

// csmAuditView is the store as apikeys.VerifyAudit sees it, minus the chains
// it verified before whose head has not moved since: each step verifies
// every chain it could have changed, not every chain of every earlier run
// again (which would make the test quadratic; the whole store is verified
// once more after the last run). It keeps the heads and chains it showed,
// for the model to compare with its events.
type csmAuditView struct {
	store.Store
	verified map[string]store.AuditHead // per csmPair, as last verified
	heads    map[string]store.AuditHead // the latest verification's, every account
	changed  map[string]bool            // the pairs whose head moved
	chains   map[string][]audit.Event   // the chains read, of those pairs
}

func csmNewAuditView(st store.Store) *csmAuditView {
	return &csmAuditView{Store: st, verified: map[string]store.AuditHead{}}
}

func (v *csmAuditView) Repo(mode apikey.Mode) store.Repository {
	return &csmAuditRepo{Repository: v.Store.Repo(mode), v: v, mode: mode}
}

type csmAuditRepo struct {
	store.Repository
	v    *csmAuditView
	mode apikey.Mode
}

func (r *csmAuditRepo) AuditAccounts(ctx context.Context) ([]store.AuditHead, error) {
	heads, err := r.Repository.AuditAccounts(ctx)
	if err != nil {
		return nil, err
	}
	var moved []store.AuditHead
	for _, h := range heads {
		pair := csmPair(h.AccountID, r.mode)
		r.v.heads[pair] = h
		if r.v.verified[pair] != h {
			r.v.changed[pair] = true
			moved = append(moved, h)
		}
	}
	return moved, nil
}

func (r *csmAuditRepo) AuditChain(ctx context.Context, accountID string) ([]audit.Event, error) {
	events, err := r.Repository.AuditChain(ctx, accountID)
	if err == nil {
		r.v.chains[csmPair(accountID, r.mode)] = events
	}
	return events, err
}

// verify runs apikeys.VerifyAudit over the view and returns the pairs whose
// chain moved since the last verification (now verified).
func (v *csmAuditView) verify() (map[string]bool, error) {
	v.heads, v.changed, v.chains = map[string]store.AuditHead{}, map[string]bool{}, map[string][]audit.Event{}
	if _, err := apikeys.VerifyAudit(ctx, v); err != nil {
		return nil, err
	}
	for pair := range v.changed {
		v.verified[pair] = v.heads[pair]
	}
	return v.changed, nil
}

var csmHex = regexp.MustCompile(`[0-9a-f]{8,}`)

// chainError describes a broken chain without its hashes or real account
// names (which differ from one replay to the next).
func (m *csmModel) chainError(err error) string {
	var b *audit.BrokenLink
	if errors.As(err, &b) {
		return fmt.Sprintf("the chain of %s is broken at seq %d: %s", m.shortPair(csmPair(b.AccountID, b.Mode)), b.Seq, csmHex.ReplaceAllString(b.Reason, "…"))
	}
	return err.Error()
}

// checkAudit holds the trail to rule 8: every chain that moved verifies;
// only the run's own chains moved; each holds exactly the model's events.
func (m *csmModel) checkAudit(rt *rapid.T) {
	changed, err := m.audit.verify()
	if err != nil {
		rt.Fatalf("AUDIT CHAIN: apikeys.VerifyAudit: %s", m.chainError(err))
	}
	var pairs, foreign []string
	own := map[string]bool{}
	for _, acct := range []string{m.acctA, m.acctB} {
		for _, mode := range apikey.Modes {
			pairs = append(pairs, csmPair(acct, mode))
			own[csmPair(acct, mode)] = true
		}
	}
	for pair := range changed {
		if !own[pair] {
			foreign = append(foreign, m.shortPair(pair))
		}
	}
	if len(foreign) > 0 {
		sort.Strings(foreign)
		rt.Fatalf("AUDIT: events were recorded on %s, which this run does not change", strings.Join(foreign, ", "))
	}
	for _, pair := range pairs {
		want := m.log[pair]
		head, ok := m.audit.heads[pair]
		if !ok {
			rt.Fatalf("AUDIT: %s has no chain head", m.shortPair(pair))
		}
		from := m.checked[pair]
		var chain []audit.Event
		if changed[pair] {
			if chain, ok = m.audit.chains[pair]; !ok {
				mode, acct, _ := strings.Cut(pair, "/")
				if chain, err = m.env.Store.Repo(apikey.Mode(mode)).AuditChain(ctx, acct); err != nil {
					rt.Fatalf("AUDIT: read the chain of %s: %v", m.shortPair(pair), err)
				}
			}
		}
		if head.Seq != int64(len(want)) || changed[pair] && len(chain) != len(want) {
			var recorded, expected []string
			for _, e := range chain[min(from, len(chain)):] {
				recorded = append(recorded, m.describeStored(e))
			}
			for _, e := range want[from:] {
				expected = append(expected, m.describeEvent(e))
			}
			rt.Fatalf("AUDIT: %s holds %d events, the model %d; recorded since the last step: [%s]; the model expects: [%s]",
				m.shortPair(pair), head.Seq, len(want), strings.Join(recorded, "; "), strings.Join(expected, "; "))
		}
		for i := from; i < len(chain); i++ {
			m.checkEvent(rt, pair, chain, i, want[i])
		}
		m.checked[pair] = len(want)
	}
}

// checkEvent compares a stored event with the model's and recomputes its
// hash from the README's encoding.
func (m *csmModel) checkEvent(rt *rapid.T, pair string, chain []audit.Event, i int, want csmEvent) {
	got := chain[i]
	where := fmt.Sprintf("AUDIT: event #%d of %s (the model's: %s)", i+1, m.shortPair(pair), m.describeEvent(want))
	var bad []string
	if got.Seq != int64(i+1) || got.AccountID != want.key.account || got.Mode != want.key.mode {
		bad = append(bad, fmt.Sprintf("seq %d of %s", got.Seq, m.shortPair(csmPair(got.AccountID, got.Mode))))
	}
	if got.Action != want.action || got.KeyID != want.key.id || got.Actor.Kind != want.actorKind || got.Actor.ID != want.actorID {
		bad = append(bad, "recorded "+m.describeStored(got))
	}
	if want.actorKind != "platform" && (got.Actor.RequestID == "" || got.ClientIP == "") {
		bad = append(bad, "no request id or client address")
	}
	if want.changes != nil {
		if keys := slices.Sorted(maps.Keys(got.Changes)); !slices.Equal(keys, want.changes) {
			bad = append(bad, fmt.Sprintf("changes %v, want %v", keys, want.changes))
		}
	}
	for _, f := range slices.Sorted(maps.Keys(want.values)) {
		v, s := want.values[f], fmt.Sprint(got.Changes[f])
		same := s == v
		if f == "expires_at" {
			a, errA := time.Parse(time.RFC3339Nano, s)
			b, _ := time.Parse(time.RFC3339Nano, v)
			same = errA == nil && a.Equal(b)
		}
		if !same {
			shown := s
			if f == "key_hint" || f == "expires_at" {
				shown = "another value" // random or real-time: not in messages
			}
			bad = append(bad, fmt.Sprintf("changes.%s is %s, want %s", f, shown, map[bool]string{true: "the new secret's hint", false: v}[f == "key_hint"]))
		}
	}
	prev := ""
	if i > 0 {
		prev = chain[i-1].Hash
	}
	if got.PrevHash != prev {
		bad = append(bad, "prev_hash is not the previous event's hash")
	}
	if h := csmEventHash(got); h != got.Hash {
		bad = append(bad, "hash is not the hex SHA-256 of the README's encoding")
	}
	b, err := json.Marshal(got.Changes)
	if err != nil {
		bad = append(bad, "changes do not encode: "+err.Error())
	}
	m.scan(rt, where, b)
	if len(bad) > 0 {
		rt.Fatalf("%s: %s", where, strings.Join(bad, "; "))
	}
}

// csmEventHash is an event's hash as the README's audit section defines it,
// written out independently of internal/audit: the hex SHA-256 of the JSON
// of id, seq, account_id, mode, action, key_id, actor (kind, id,
// request_id), client_ip, created_at (RFC 3339, UTC, at most microseconds),
// changes (keys sorted), prev_hash, in that order.
func csmEventHash(e audit.Event) string {
	type actor struct {
		Kind      string `json:"kind"`
		ID        string `json:"id"`
		RequestID string `json:"request_id"`
	}
	changes := e.Changes
	if changes == nil {
		changes = map[string]any{}
	}
	b, err := json.Marshal(struct {
		ID        string         `json:"id"`
		Seq       int64          `json:"seq"`
		AccountID string         `json:"account_id"`
		Mode      string         `json:"mode"`
		Action    string         `json:"action"`
		KeyID     string         `json:"key_id"`
		Actor     actor          `json:"actor"`
		ClientIP  string         `json:"client_ip"`
		CreatedAt string         `json:"created_at"`
		Changes   map[string]any `json:"changes"`
		PrevHash  string         `json:"prev_hash"`
	}{e.ID, e.Seq, e.AccountID, string(e.Mode), e.Action, e.KeyID, actor{e.Actor.Kind, e.Actor.ID, e.Actor.RequestID},
		e.ClientIP, e.CreatedAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), changes, e.PrevHash})
	if err != nil {
		return "unencodable: " + err.Error()
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ---------------------------------------------------------------------------
// Verify: a service asks whether a key token works.

// csmVerdict is the verdict the model expects from verify.
type csmVerdict struct {
	code    oapi.VerifyCode
	key     *csmKey // nil for NOT_FOUND: nothing of any key is shown
	grace   bool    // the token is the key's replaced secret inside its grace period
	missing []string
	// left is credits_remaining (nil: absent), after spending spend.
	left  *int64
	spend int64
}

// csmNotFound is verify's whole answer (data) about a key the caller may not
// know about: a token that is no key, no key's, another account's key or the
// other mode's, byte for byte alike.
const csmNotFound = `{"code":"NOT_FOUND","expires_at":null,"grace_period_ends_at":null,"valid":false}`

var csmKeyID = regexp.MustCompile(`key_[A-Za-z0-9]+`)

// wantVerify follows verify's order of checks: gate (account:api:key:verify)
// → 400 (a token over 512 characters, such as a JWT with many claims: the
// body's schema holds keys, not any bearer token) → 422 (a permission asked
// for is not in the catalog) → 200 with a verdict:
// NOT_FOUND (not one of the run's secrets the store still knows, or a key of
// an account the caller does not act on or of the other mode) → REVOKED
// (deleted, or a replaced secret past its grace) → DISABLED → EXPIRED →
// NETWORK_NOT_ALLOWED (client_ip absent or outside the key's networks) →
// INSUFFICIENT_PERMISSIONS → VALID. (RATE_LIMITED: the budgets are
// unlimited here; verify_api_key_test.go checks it.)
func (m *csmModel) wantVerify(c *csmCaller, token string, s *csmSecret, asked csmSet, unknown bool, clientIP string, cost *int, now time.Time) (csmWant, csmVerdict) {
	p, w := m.gate(c, csmPermVerify, now)
	if w != nil {
		return *w, csmVerdict{}
	}
	if len(token) > 512 {
		return csmWant{400, client.CodeValidationFailed, "key is longer than 512 characters"}, csmVerdict{}
	}
	if unknown {
		return csmWant{422, client.CodeUnknownPermission, "a permission asked for is not in the catalog"}, csmVerdict{}
	}
	ok := csmWant{200, 0, "a verdict"}
	if s == nil {
		return ok, csmVerdict{code: oapi.VerifyNotFound}
	}
	k := s.key
	// The store knows a secret while it is the key's current one, or the
	// replaced one, kept until the key rotates again (issue 18), grace or
	// not, deleted or not; only a secret rotated away twice is no key's.
	current, previous := s.token == k.cur, k.prev != "" && s.token == k.prev
	if !current && !previous || k.mode != p.mode || !p.canActOn(k.account) {
		return ok, csmVerdict{code: oapi.VerifyNotFound}
	}
	v := csmVerdict{key: k}
	switch {
	case k.deleted:
		v.code = oapi.VerifyRevoked
	case previous && !now.Before(k.prevEnd):
		v.code = oapi.VerifyRevoked
	case k.inactive:
		v.code = oapi.VerifyDisabled
	case m.expired(k, now):
		v.code = oapi.VerifyExpired
	case !csmAllows(k.networks, clientIP):
		v.grace = previous
		v.code = oapi.VerifyNetworkNotAllowed
	default:
		v.grace = previous
		v.code = oapi.VerifyValid
		if v.missing = asked.minus(k.perms); len(v.missing) > 0 {
			v.code = oapi.VerifyInsufficientPermissions
			break
		}
		// Rule 24: a VALID verdict spends the cost, when that many are left.
		if cr := k.credits.settle(now); cr != nil {
			n := int64(1)
			if cost != nil {
				n = int64(*cost)
			}
			left := cr.left
			if left >= n {
				v.spend, left = n, left-n
			} else {
				v.code = oapi.VerifyUsageExceeded
			}
			v.left = &left
		}
	}
	return ok, v
}

// verify asks, with any credential, about any token: one of the run's
// secrets (current, replaced, dead; of any account and mode; the caller's
// own), or a token that is no key's. Verify changes nothing: the step's
// check compares every stored key and audit chain with the model, which
// verify leaves as it was.
func (m *csmModel) verify(rt *rapid.T) {
	if !m.begin() {
		return
	}
	var s *csmSecret
	token, what := "", ""
	kind := rapid.SampledFrom([]string{"a secret of the caller's account and mode", "a secret of the caller's account and mode",
		"a secret of the caller's account and mode", "a dead secret of the caller's account and mode", "a dead secret of the caller's account and mode",
		"a dead secret, asked by its account's managed secret", "a dead secret, asked by its account's managed secret",
		"any secret of the run", "the caller's own", "not a key", "a bad checksum", "a key nobody holds", "a JWT",
		"a secret with credits, asked by its account's managed secret", "a secret with credits, asked by its account's managed secret"}).Draw(rt, "token kind")
	var c *csmCaller
	if kind == "a dead secret, asked by its account's managed secret" {
		// A caller that may verify, so that the verdicts about dead keys
		// (REVOKED, DISABLED, EXPIRED, NOT_FOUND for a secret rotated away)
		// are reached, not stopped at the gate.
		now := m.now()
		var dead []*csmSecret
		for _, x := range m.secrets {
			if p, _ := m.authenticate(&csmCaller{secret: x}, now); p == nil {
				dead = append(dead, x)
			}
		}
		if len(dead) > 0 {
			s = dead[rapid.IntRange(0, len(dead)-1).Draw(rt, "dead secret #")]
			for _, x := range m.secrets {
				if k := x.key; k.managed && !k.publishable && k.account == s.key.account && k.mode == s.key.mode && x.token == k.cur {
					c = &csmCaller{token: x.token, secret: x, label: m.describeSecret(x, now)}
				}
			}
		}
	}
	if kind == "a secret with credits, asked by its account's managed secret" {
		// Verifies that spend (rule 24) down to USAGE_EXCEEDED.
		var metered []*csmSecret
		for _, x := range m.secrets {
			if x.key.credits != nil {
				metered = append(metered, x)
			}
		}
		if len(metered) > 0 {
			s = metered[rapid.IntRange(0, len(metered)-1).Draw(rt, "metered secret #")]
			if root := m.managedSecretOf(s.key.account, s.key.mode); root != nil {
				c = &csmCaller{token: root.token, secret: root, label: m.describeSecret(root, m.now())}
			}
		}
	}
	if c == nil {
		c = m.drawCaller(rt)
	}
	switch kind {
	case "a secret with credits, asked by its account's managed secret":
		if s != nil {
			break
		}
		s = m.secrets[rapid.IntRange(0, len(m.secrets)-1).Draw(rt, "secret #")]
	case "a dead secret, asked by its account's managed secret":
		if s != nil {
			break
		}
		fallthrough
	case "a secret of the caller's account and mode", "a dead secret of the caller's account and mode":
		// Dead ones (deleted, switched off, expired, rotated away, past their
		// grace) weigh double: they make the verdicts other than VALID.
		_, own, _ := m.grantOf(c)
		now := m.now()
		var cands []*csmSecret
		for _, x := range m.secrets {
			if p, _ := m.authenticate(&csmCaller{secret: x}, now); x.key.account == own && x.key.mode == m.modeOf(c) &&
				(kind != "a dead secret of the caller's account and mode" || p == nil) {
				cands = append(cands, x)
			}
		}
		if len(cands) > 0 {
			s = cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "secret #")]
			break
		}
		fallthrough
	case "any secret of the run":
		s = m.secrets[rapid.IntRange(0, len(m.secrets)-1).Draw(rt, "secret #")]
	case "the caller's own":
		if c.secret != nil {
			s = c.secret
			break
		}
		token, what = c.token, "the caller's own JWT"
	case "not a key":
		token, what = "not-a-key", "a token that is no key"
	case "a bad checksum":
		cur := m.secrets[rapid.IntRange(0, len(m.secrets)-1).Draw(rt, "secret #")].token
		token, what = cur[:len(cur)-1]+map[bool]string{true: "B", false: "A"}[strings.HasSuffix(cur, "A")], "a secret with a bad checksum"
	case "a key nobody holds":
		nobody, err := keys.New(keys.KindSecret, m.modeOf(c) == apikey.Sandbox)
		if err != nil {
			rt.Fatal(err)
		}
		what = "a well-formed key nobody holds"
		token = nobody
	default:
		token, what = m.drawJWT(rt).token, "a JWT"
	}
	if s != nil {
		token, what = s.token, m.describeSecret(s, m.now())
	}
	var asked csmSet
	unknown := false
	body := oapi.VerifyAPIKeyRequest{Key: token}
	which := rapid.SampledFrom([]string{"none", "some of the key's", "some of the key's and one more", "some of the key's and one more",
		"any", "an unknown one"}).Draw(rt, "permissions asked")
	switch which {
	case "some of the key's", "some of the key's and one more":
		if s != nil {
			asked = csmSet{}
			if own := s.key.perms.ordered(); len(own) > 0 {
				asked = csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(own), 0, len(own), rapid.ID[string]).Draw(rt, "asked")...)
			}
			if which == "some of the key's and one more" {
				asked[rapid.SampledFrom(csmCatalog).Draw(rt, "asked too")] = true
			}
			break
		}
		fallthrough
	case "any":
		asked = csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(csmCatalog), 0, 4, rapid.ID[string]).Draw(rt, "asked")...)
	case "an unknown one":
		unknown = true
		asked = csmSetOf("payment:explode")
	}
	if asked != nil {
		perms := oapi.Permissions(asked.perms())
		body.Permissions = &perms
	}

	clientIP := rapid.SampledFrom([]string{"", "127.0.0.1", "127.0.0.2", "10.1.2.3", "2001:db8::"}).Draw(rt, "client_ip")
	if clientIP != "" {
		body.ClientIP = &clientIP
	}
	body.Cost = csmCost(rt)
	now := m.now()
	want, verdict := m.wantVerify(c, token, s, asked, unknown, clientIP, body.Cost, now)
	desc := fmt.Sprintf("verify %s asking %s from %q by %s", what, asked, clientIP, c.label)
	if body.Cost != nil {
		desc += fmt.Sprintf(" at cost %d", *body.Cost)
	}
	res, err := m.env.Client(c.token).Raw().VerifyAPIKeyWithResponse(ctx, body)
	m.must(rt, desc, err)
	a, ae := m.rawAnswer(rt, desc, res.HTTPResponse, res.Body)
	got := oapi.VerifyCode("")
	if a.status == 200 {
		got = res.JSON200.Data.Code
	}
	m.stats[fmt.Sprintf("verify %d/%d %s", a.status, a.code, got)]++
	rt.Logf("step %d: %s → want %s %s, got %d/%d %s", m.steps, desc, want, verdict.code, a.status, a.code, got)
	m.expect(rt, desc, want, a)
	if ae != nil {
		m.ownerStillWorks(rt, c, ae)
		return
	}
	m.checkVerdict(rt, desc, verdict, &res.JSON200.Data, res.Body)
	if verdict.spend > 0 {
		verdict.key.credits.left -= verdict.spend
	}
}

// checkVerdict compares a verdict with the model's: its code, and the key's
// details exactly when the caller may see the key; a NOT_FOUND answer is
// byte for byte the one every unknown token gets.
func (m *csmModel) checkVerdict(rt *rapid.T, what string, want csmVerdict, v *oapi.VerifyAPIKeyResult, body []byte) {
	if v.Code != want.code || v.Valid != (want.code == oapi.VerifyValid) {
		rt.Fatalf("%s: verdict %s (valid %v), the model's %s", what, v.Code, v.Valid, want.code)
	}
	k := want.key
	if k == nil {
		var raw struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &raw); err != nil || string(raw.Data) != csmNotFound {
			// Key ids are random: named by the model's labels, so that every replay fails alike.
			shown := csmKeyID.ReplaceAllStringFunc(string(raw.Data), m.labelOf)
			rt.Fatalf("KEY OF ANOTHER ACCOUNT OR MODE TOLD APART: %s: the NOT_FOUND answer is %s, want exactly %s", what, shown, csmNotFound)
		}
		return
	}
	var bad []string
	if v.ID == nil || *v.ID != k.id || v.AccountID == nil || *v.AccountID != k.account {
		bad = append(bad, "it names another key or account")
	}
	if v.Mode == nil || string(*v.Mode) != string(k.mode) || v.Type == nil || (*v.Type == oapi.VerifiedPublishable) != k.publishable ||
		v.Managed == nil || *v.Managed != k.managed {
		bad = append(bad, fmt.Sprintf("mode %v type %v managed %v", v.Mode, v.Type, v.Managed))
	}
	if v.Permissions == nil || !csmFromMap(*v.Permissions).equal(k.perms) {
		bad = append(bad, "permissions differ")
	}
	if !csmSameTime(v.ExpiresAt, k.expires) {
		bad = append(bad, "expires "+m.rel(v.ExpiresAt))
	}
	if v.InGracePeriod == nil || *v.InGracePeriod != want.grace {
		bad = append(bad, fmt.Sprintf("in_grace_period %v, want %v", v.InGracePeriod, want.grace))
	}
	if want.grace && (v.GracePeriodEndsAt == nil || v.GracePeriodEndsAt.Sub(k.prevEnd).Abs() > time.Microsecond) ||
		!want.grace && v.GracePeriodEndsAt != nil {
		bad = append(bad, "grace_period_ends_at "+m.rel(v.GracePeriodEndsAt))
	}
	var missing []string
	if v.MissingPermissions != nil {
		missing = *v.MissingPermissions
	}
	if !slices.Equal(missing, want.missing) {
		bad = append(bad, fmt.Sprintf("missing_permissions %v, want %v", missing, want.missing))
	}
	if v.RetryAfterSeconds != nil {
		bad = append(bad, "retry_after_seconds set")
	}
	if got, left := v.CreditsRemaining, want.left; (got == nil) != (left == nil) || got != nil && *got != *left {
		bad = append(bad, fmt.Sprintf("credits_remaining %s, want %s", csmInt(got), csmInt(left)))
	}
	if len(bad) > 0 {
		rt.Fatalf("%s: the verdict differs from the model: %s", what, strings.Join(bad, "; "))
	}
}
