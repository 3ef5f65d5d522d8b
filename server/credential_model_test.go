package server_test

// TestCredentialSafetyModel is a model-based test of the credential-safety
// rules of issue 9. rapid drives a real server on a real store (SQLite, and
// PostgreSQL when it is up) through the Go client with random credentials and
// operations; after every answer and every step it compares with an
// independent model: the status and code of each answer (following the
// contract's order of checks), the secrets issued, which secrets authenticate,
// and every stored key. The model imports none of the server's rules
// (internal/apikeys, internal/policy, internal/perm): the catalog, the
// managed keys' permissions and the order of checks are written out here, so
// a change to either side shows up as a disagreement.
//
// The rules it holds the server to:
//  1. power never grows: a secret obtained by create or regenerate holds no
//     permission its obtaining credential lacks (keys and JWTs);
//  2. life never grows: a secret obtained by an expiring KEY expires no later
//     than that key (JWTs are exempt);
//  3. a replaced secret in its grace period manages nothing (403 40304) but
//     still authenticates; the owner's current secret keeps working;
//  4. every secret held authenticates exactly while the model says it lives;
//  5. nothing else changes: every stored key of both accounts and both modes
//     matches the model after every step;
//  6. every answer's status and code are the model's.

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"os"
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
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// csmCatalog is the permission catalog of openapi.yaml, written out (checked
// against the managed secret key's stored permissions). Key management comes
// first so that shrunk counterexamples name those permissions.
var csmCatalog = []string{
	"account:api:key:update", "account:api:key:create", "account:api:key:read", "account:api:key:delete",
	"account:read", "account:update",
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
	t.Run("sqlite", func(t *testing.T) {
		csmRun(t, testenv.Config{}, 30, 20)
	})
	t.Run("postgres", func(t *testing.T) {
		// Fewer runs: each request costs a network round trip or two.
		csmRun(t, testenv.Config{Store: openPostgres(t, storetest.FreshPostgresDB(t))}, 15, 15)
	})
}

// csmRun runs the state machine against one server. checks and steps
// (average actions per run; a run stops acting at twice that) are defaults
// that -rapid.checks / -rapid.steps (or RAPID_CHECKS / RAPID_STEPS) override.
func csmRun(t *testing.T, cfg testenv.Config, checks, steps int) {
	csmRapidDefaults(t, map[string]int{"rapid.checks": checks, "rapid.steps": steps})
	maxSteps := 2 * csmFlagInt(t, "rapid.steps")
	env := testenv.New(t, cfg)
	csmCheckCatalog(t, env)
	stats := map[string]int{}
	runs := 0
	start := time.Now()
	rapid.Check(t, func(rt *rapid.T) {
		runs++
		m := csmNewModel(t, env, runs, maxSteps, stats)
		rt.Repeat(map[string]func(*rapid.T){
			"create":     m.create,
			"regenerate": m.regenerate,
			"probe":      m.probeAction,
			"advance":    m.advance,
			"":           m.check,
		})
	})
	var lines []string
	for k, v := range stats {
		lines = append(lines, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(lines)
	t.Logf("%d runs in %v; answers: %s", runs, time.Since(start).Round(time.Millisecond), strings.Join(lines, ", "))
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
	prev        string     // the replaced secret kept for a grace period, "" if none
	prevEnd     time.Time  // when prev stops working
	gen         int        // secrets issued so far
}

// csmSecret is one plaintext secret the model holds.
type csmSecret struct {
	token string
	key   *csmKey
	gen   int // which of the key's secrets: 1 for the first
}

// csmGrant is what a JWT grants.
type csmGrant struct {
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
	expires     *time.Time // key credentials only
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
}

func csmNewModel(t *testing.T, env *testenv.Env, run, maxSteps int, stats map[string]int) *csmModel {
	m := &csmModel{
		tt: t, env: env, maxStep: maxSteps, stats: stats,
		acctA: fmt.Sprintf("acct_csm%d_a", run), acctB: fmt.Sprintf("acct_csm%d_b", run), ghost: "acct_csm_ghost",
		byID: map[string]*csmKey{}, seen: map[*csmSecret]csmAnswer{}, virt: map[int64]time.Duration{},
	}
	for _, acct := range []string{m.acctA, m.acctB} {
		managed := env.Bootstrap(acct)
		for _, mode := range apikey.Modes {
			mk := managed[mode]
			where := m.short(acct) + "/" + string(mode)
			m.addKey(&csmKey{label: "managed secret " + where, id: mk.SecretID, account: acct, name: "Managed secret key",
				mode: mode, managed: true, perms: csmSetOf(csmCatalog...)}, mk.Secret)
			m.addKey(&csmKey{label: "managed publishable " + where, id: mk.PublishableID, account: acct, name: "Managed publishable key",
				mode: mode, managed: true, publishable: true, perms: csmSetOf(csmPublishable...)}, mk.Publishable)
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
	m.secrets = append(m.secrets, &csmSecret{token: secret, key: k, gen: k.gen})
}

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
		return nil, csmWant{401, oapi.CodeInvalidCredentials, "replaced secret: revoked"}
	}
	if k.expires != nil && !now.Before(*k.expires) {
		return nil, csmWant{401, oapi.CodeExpiredCredentials, "the key has expired"}
	}
	return &csmPrincipal{isKey: true, publishable: k.publishable, grace: grace, mode: k.mode,
		accounts: []string{k.account}, perms: k.perms, expires: k.expires}, csmWant{}
}

// gate is the common head of both operations' order of checks:
// 401 → (429: budgets are unlimited here) → 40303 → 40304 → 40300.
func (m *csmModel) gate(c *csmCaller, need string, now time.Time) (*csmPrincipal, *csmWant) {
	p, w := m.authenticate(c, now)
	switch {
	case p == nil:
		return nil, &w
	case p.publishable:
		return p, &csmWant{403, oapi.CodePublishableKeyForbidden, "publishable keys manage no keys"}
	case p.grace:
		return p, &csmWant{403, oapi.CodeReplacedSecret, "a replaced secret in its grace period manages no keys"}
	case !p.perms[need]:
		return p, &csmWant{403, oapi.CodePermissionDenied, "lacks " + need}
	}
	return p, nil
}

type csmCreateReq struct {
	account string
	name    string
	perms   csmSet
	expires *time.Time
}

func (m *csmModel) wantCreate(c *csmCaller, r csmCreateReq, now time.Time) csmWant {
	p, w := m.gate(c, csmPermCreate, now)
	if w != nil {
		return *w
	}
	if !p.canActOn(r.account) {
		return csmWant{403, oapi.CodeAccountForbidden, "may not act on " + m.short(r.account)}
	}
	// An expiry no key may have is refused as input, before any rule.
	if r.expires != nil && (!r.expires.After(now) || r.expires.After(csmMaxExpiry)) {
		return csmWant{422, oapi.CodeInvalidExpiry, "expires_at not in the future or past 9999"}
	}
	if miss := r.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, oapi.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (r.expires == nil || r.expires.After(*p.expires)) {
		return csmWant{422, oapi.CodeLifetimeExceedsCaller, "life never grows: the caller expires " + m.rel(p.expires)}
	}
	if r.account == m.ghost {
		return csmWant{404, oapi.CodeAccountNotFound, "no such account"}
	}
	for _, k := range m.keys {
		if k.mode == p.mode && k.account == r.account && k.name == r.name && (k.expires == nil || now.Before(*k.expires)) {
			return csmWant{409, oapi.CodeDuplicateName, "name taken by " + k.label}
		}
	}
	return csmWant{201, 0, "created"}
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
		return csmWant{400, oapi.CodeValidationFailed, "grace_period_minutes out of range"}
	}
	k := m.byID[r.id]
	if k == nil || k.mode != p.mode || !p.canActOn(k.account) {
		return csmWant{404, oapi.CodeKeyNotFound, "no such key for this credential"}
	}
	if !k.managed {
		return csmWant{422, oapi.CodeKeyNotManaged, "custom keys are not regenerated"}
	}
	if miss := k.perms.minus(p.perms); len(miss) > 0 {
		return csmWant{403, oapi.CodePrivilegeEscalation, "power never grows: caller lacks " + csmSetOf(miss...).String()}
	}
	if p.isKey && p.expires != nil && (k.expires == nil || k.expires.After(*p.expires)) {
		return csmWant{403, oapi.CodeLifetimeEscalation, "life never grows: the target outlives the caller"}
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

var csmCallerKinds = []string{"managed secret", "jwt", "custom key", "replaced secret in grace", "dead secret", "publishable"}

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
	claims := m.env.JWT.Claims(fmt.Sprintf("csm%d@example.com", m.seq), g.accounts, g.perms.list(), string(g.mode))
	return &csmCaller{token: m.env.JWT.Sign(m.tt, claims), jwt: g,
		label: fmt.Sprintf("JWT %s on %v in %s", g.perms, accts, g.mode)}
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
	// Names from a small fixed pool (not from the run's history), so they
	// collide now and then and a shrunk case keeps its collisions.
	r.name = rapid.SampledFrom(csmNames).Draw(rt, "name")
	body := client.CreateAPIKeyRequest{Name: r.name, Permissions: r.perms.perms(), ExpiresAt: r.expires}

	now = m.now()
	want := m.wantCreate(c, r, now)
	p, _ := m.authenticate(c, now)
	got, err := m.env.Client(c.token).CreateAPIKey(ctx, r.account, body)
	a, ae := csmResult(rt, err, 201)
	m.stats[fmt.Sprintf("create %d/%d", a.status, a.code)]++
	rt.Logf("step %d: create by %s on %s: %s expires %s name %q → want %s, got %d/%d",
		m.steps, c.label, m.short(r.account), r.perms, m.rel(r.expires), r.name, want, a.status, a.code)

	if got != nil {
		m.checkObtained(rt, c, p, csmFromMap(got.Permissions), got.ExpiresAt, now, "create")
	}
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("create by %s: want %s, got %d/%d", c.label, want, a.status, a.code)
	}
	if ae != nil {
		if p != nil {
			m.checkDetails(rt, ae, r.perms.minus(p.perms))
		}
		m.ownerStillWorks(rt, c, ae)
		return
	}
	// The new key is what was asked for, in the caller's mode and account.
	prefix := "sk_" + string(p.mode) + "_"
	if got.AccountId != r.account || got.Managed || got.Type != oapi.SECRET || got.Name != r.name ||
		!csmFromMap(got.Permissions).equal(r.perms) || !csmSameTime(got.ExpiresAt, r.expires) ||
		!strings.HasPrefix(got.Key, prefix) || m.byID[got.Id] != nil {
		rt.Fatalf("create by %s returned a %s key %q on %s (managed %v) with %s expiring %s, secret %.8s…; want a new %s… key on %s with %s expiring %s",
			c.label, got.Type, got.Name, m.short(got.AccountId), got.Managed, csmFromMap(got.Permissions), m.rel(got.ExpiresAt), got.Key,
			prefix, m.short(r.account), r.perms, m.rel(r.expires))
	}
	m.addKey(&csmKey{label: fmt.Sprintf("custom %s %s/%s", r.name, m.short(r.account), p.mode), id: got.Id, account: r.account,
		name: r.name, mode: p.mode, perms: r.perms, expires: r.expires}, got.Key)
}

func (m *csmModel) regenerate(rt *rapid.T) {
	if !m.begin() {
		return
	}
	c := m.drawCaller(rt)
	kind := rapid.SampledFrom([]string{"managed secret", "managed publishable", "custom key", "no such key"}).Draw(rt, "target kind")
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
			(kind == "custom key" && !k.managed) {
			cands = append(cands, k)
		}
	}
	r := csmRegenReq{id: csmNoSuchKey}
	var target *csmKey
	if len(cands) > 0 {
		target = cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "target #")]
		r.id = target.id
	}
	var opts []client.RegenerateOption
	if g := rapid.SampledFrom([]int{-1, 0, 5, 60, 10080, 10081}).Draw(rt, "grace minutes (-1: no body)"); g >= 0 {
		r.grace = &g
		if g <= 10080 {
			opts = append(opts, client.WithGracePeriod(time.Duration(g)*time.Minute))
		}
	}

	before := m.now()
	want := m.wantRegenerate(c, r, before)
	p, _ := m.authenticate(c, before)
	var (
		got *client.APIKey
		err error
	)
	if r.grace != nil && *r.grace > 10080 {
		// The client refuses this before sending; the raw generated client
		// sends it, so that the server's own refusal is what is checked.
		res, rerr := m.env.Client(c.token).Raw().RegenerateApiKeyWithResponse(ctx, r.id, oapi.RegenerateApiKeyRequest{GracePeriodMinutes: r.grace})
		switch {
		case rerr != nil:
			err = rerr
		case res.JSON200 != nil:
			got = &res.JSON200.Data
		default:
			err = client.ParseError(res.HTTPResponse, res.Body)
		}
	} else {
		got, err = m.env.Client(c.token).RegenerateAPIKey(ctx, r.id, opts...)
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
	}
	if a.status != want.status || a.code != want.code {
		rt.Fatalf("regenerate %s by %s: want %s, got %d/%d", tname, c.label, want, a.status, a.code)
	}
	if ae != nil {
		if target != nil && p != nil {
			m.checkDetails(rt, ae, target.perms.minus(p.perms))
		}
		m.ownerStillWorks(rt, c, ae)
		return
	}
	k := target
	kindPrefix := "sk_"
	if k.publishable {
		kindPrefix = "pk_"
	}
	if got.Id != k.id || !got.Managed || !csmFromMap(got.Permissions).equal(k.perms) || !csmSameTime(got.ExpiresAt, k.expires) ||
		!strings.HasPrefix(got.Key, kindPrefix+string(k.mode)+"_") {
		rt.Fatalf("regenerate of %s returned key (same id %v, managed %v) with %s expiring %s, secret %.8s…",
			k.label, got.Id == k.id, got.Managed, csmFromMap(got.Permissions), m.rel(got.ExpiresAt), got.Key)
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
	}
	m.setSecret(k, got.Key)
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

// checkDetails checks details.missing of a 40302: the sorted permissions the caller lacks.
func (m *csmModel) checkDetails(rt *rapid.T, ae *client.Error, missing []string) {
	if ae.Code != oapi.CodePrivilegeEscalation {
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
	if ae.Code != oapi.CodeReplacedSecret || c.secret == nil {
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
		if got.AccountID != k.account || got.Name != k.name || got.Managed != k.managed || got.Deleted || got.Status != apikey.StatusActive ||
			(got.Type == apikey.TypePublishable) != k.publishable {
			bad = append(bad, fmt.Sprintf("account %s name %q managed %v deleted %v status %s type %s", m.short(got.AccountID), got.Name, got.Managed, got.Deleted, got.Status, got.Type))
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
		if k.prev != "" && now.Before(k.prevEnd) {
			if !bytes.Equal(got.PrevSecretHash, csmHash(k.prev)) || got.PrevSecretExpiresAt == nil ||
				got.PrevSecretExpiresAt.Sub(k.prevEnd).Abs() > time.Microsecond {
				bad = append(bad, "the replaced secret in its grace period is not kept until "+m.rel(&k.prevEnd))
			}
		} else if got.PrevSecretHash != nil && got.PrevSecretExpiresAt != nil && now.Before(*got.PrevSecretExpiresAt) {
			bad = append(bad, "a replaced secret is kept in grace until "+m.rel(got.PrevSecretExpiresAt))
		}
		if len(bad) > 0 {
			rt.Fatalf("STORE: %s differs from the model: %s", m.describeKey(k), strings.Join(bad, "; "))
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
	if ae.Code == oapi.CodeTooManyAuthFailures {
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
