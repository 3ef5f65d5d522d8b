package server_test

// The two actors of issue 17 in TestCredentialSafetyModel, and the rules of
// who may take power away that they test:
//
//   - the OUTSIDER holds only public material: the accounts' publishable
//     keys, key ids, the Idempotency-Keys it has seen, GitHub's signed leak
//     reports of anything it saw (a publishable key pushed to a public
//     repository), forged X-Forwarded-For headers, forged keys. It sends
//     requests with all of them;
//   - the PEER is a custom key holding exactly the managed secret key's
//     permissions: as strong as the account's root, and still not its owner.
//     drawCaller hands it out like the other kinds, and its own step turns
//     it on the account's managed keys.
//
// The invariants, checked against the model after every step (rules 11–14 of
// the model's header):
//
// 11. the root stays: every account's managed secret key is switched on and
//     its current secret is one the model holds (somebody was shown it), so
//     the owner always keeps a working root credential, whatever a peer, a
//     JWT or the key itself asked;
// 12. refusals cost the presenter: the outsider's requests spend no budget
//     but its own address's (no credential's, no account's), so the owner's
//     verify of its own keys never turns RATE_LIMITED because of them;
// 13. public stays working: a leak report of a publishable key changes no
//     key (label false_positive, one audit event for the owner to see), and
//     nothing the outsider sends changes any key (rule 5 holds across it);
// 14. a replay is an execution: an answer replayed for an Idempotency-Key is
//     given only to the credential that made the original request, and only
//     while that credential could obtain it directly (the gate and rules
//     1–3); the same credential within the day gets its answer back, same
//     secret; a replay refused is refused exactly as the gate says; nothing
//     replayed ever runs twice. One exception (issue 18): a secret that
//     regenerated its own key is that key's replaced secret afterwards, which
//     the gate refuses (403 40304 in grace, 401 after); it still gets that
//     rotation's answer back, same secret, while the key keeps it as its
//     previous secret (until the key rotates again) and the key's current
//     secret could regenerate the key directly.

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// csmOutsiderAddr is where the outsider really speaks from (the test
// server's loopback peer): the only budget its requests may spend is this
// address's.
const csmOutsiderAddr = "127.0.0.1"

// csmForgedAddr is the address the outsider claims in X-Forwarded-For: a
// victim's, whose failed-authentication budget it must not reach.
const csmForgedAddr = "203.0.113.7"

// victimPK is the current secret of a managed publishable key, drawn: the
// public material the outsider starts from.
func (m *csmModel) victimPK(rt *rapid.T) *csmSecret {
	var cands []*csmSecret
	for _, s := range m.secrets {
		if s.key.publishable && s.key.managed && s.token == s.key.cur {
			cands = append(cands, s)
		}
	}
	return cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "victim's publishable key #")]
}

// managedKey is the managed secret (or publishable) key of an account in a mode.
func (m *csmModel) managedKey(account string, mode apikey.Mode, publishable bool) *csmKey {
	for _, k := range m.keys {
		if k.managed && k.publishable == publishable && k.account == account && k.mode == mode {
			return k
		}
	}
	return nil
}

// managedSecretOf is the current secret of the managed secret key of an
// account in a mode (nil if the model holds none: rule 11 fails then).
func (m *csmModel) managedSecretOf(account string, mode apikey.Mode) *csmSecret {
	for _, s := range m.secrets {
		if k := s.key; k.managed && !k.publishable && k.account == account && k.mode == mode && s.token == k.cur {
			return s
		}
	}
	return nil
}

// outsider sends a burst of requests made of public material only and holds
// the server to rules 12 and 13: each is refused as the gate says, none
// spends a budget but the outsider's address's, and afterwards the owner's
// verify of the publishable key still answers VALID while the key lives.
func (m *csmModel) outsider(rt *rapid.T) {
	if !m.begin() {
		return
	}
	pk := m.victimPK(rt)
	k := pk.key
	root := m.managedSecretOf(k.account, k.mode)
	// Public ids: the victim's keys of the same account and mode.
	var ids []string
	for _, x := range m.keys {
		if x.account == k.account && x.mode == k.mode {
			ids = append(ids, x.id)
		}
	}
	n := rapid.IntRange(1, 6).Draw(rt, "outsider requests")
	m.limiter.take()
	var sent []string
	for i := 0; i < n; i++ {
		kind := rapid.SampledFrom([]string{"the publishable key", "the publishable key", "the publishable key",
			"a forged key", "no credential"}).Draw(rt, "outsider credential")
		op := rapid.SampledFrom([]string{"get", "list", "create", "regenerate", "disable", "delete", "verify", "audit"}).Draw(rt, "outsider operation")
		id := ids[rapid.IntRange(0, len(ids)-1).Draw(rt, "public id #")]
		forge := rapid.Bool().Draw(rt, "forge X-Forwarded-For")
		c := &csmCaller{token: pk.token, secret: pk, label: "the outsider with " + m.describeSecret(pk, m.now())}
		var want csmWant
		switch kind {
		case "the publishable key":
			need := map[string]string{"get": csmPermRead, "list": csmPermRead, "create": csmPermCreate, "regenerate": csmPermUpdate,
				"disable": csmPermUpdate, "delete": csmPermDelete, "verify": csmPermVerify, "audit": csmPermAudit}[op]
			_, w := m.gate(c, need, m.now())
			if w == nil {
				rt.Fatalf("the model lets a publishable key %s", op)
				return
			}
			want = *w
		case "a forged key":
			forged := []byte(pk.token)
			forged[len(forged)-1] ^= 1 // a checksum that fails: no key's
			c = &csmCaller{token: string(forged), label: "the outsider with a forged key"}
			want = csmWant{401, client.CodeInvalidCredentials, "a forged key"}
		default:
			c = &csmCaller{label: "the outsider without a credential"}
			want = csmWant{401, client.CodeMissingCredentials, "no credential"}
		}
		req := m.outsiderRequest(rt, op, k, id, pk.token, c.token)
		if forge {
			req.Header.Set("X-Forwarded-For", csmForgedAddr)
		}
		what := fmt.Sprintf("%s: %s %s (X-Forwarded-For forged: %v)", c.label, op, m.labelOf(id), forge)
		res, err := http.DefaultClient.Do(req)
		m.must(rt, what, err)
		b, err := io.ReadAll(res.Body)
		_ = res.Body.Close()
		m.must(rt, what, err)
		a, _ := m.rawAnswer(rt, what, res, b)
		m.stats[fmt.Sprintf("outsider %d/%d", a.status, a.code)]++
		rt.Logf("step %d: %s → want %s, got %d/%d", m.steps, what, want, a.status, a.code)
		m.expect(rt, what, want, a)
		sent = append(sent, what)
	}
	for _, b := range m.limiter.take() {
		if b != "authfail:"+csmOutsiderAddr {
			rt.Fatalf("OUTSIDER SPENT ANOTHER'S BUDGET (rule 12): %q, spent by one of: %s; refusals must cost the presenter (its address %s), never a public credential, its account or a forged address",
				b, strings.Join(sent, "; "), csmOutsiderAddr)
		}
	}
	m.ownerVerifies(rt, pk, root)
}

// outsiderRequest builds the request op with the outsider's token (none:
// no Authorization) on the victim's key id or account.
func (m *csmModel) outsiderRequest(rt *rapid.T, op string, k *csmKey, id, pk, token string) *http.Request {
	var method, path, body string
	switch op {
	case "get":
		method, path = http.MethodGet, "/api-keys/"+id
	case "list":
		method, path = http.MethodGet, "/api-keys/?account_id="+k.account
	case "create":
		method, path, body = http.MethodPost, "/api-keys/?account_id="+k.account, `{"name":"n0","permissions":{"payment":["read"]}}`
	case "regenerate":
		method, path, body = http.MethodPost, "/api-keys/"+id+"/regenerate", `{}`
	case "disable":
		method, path, body = http.MethodPatch, "/api-keys/"+id, `{"status":"INACTIVE"}`
	case "delete":
		method, path = http.MethodDelete, "/api-keys/"+id
	case "verify":
		method, path, body = http.MethodPost, "/api-keys/verify", fmt.Sprintf(`{"key":%q}`, pk)
	case "audit":
		method, path = http.MethodGet, "/audit-events?account_id="+k.account
	}
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, m.env.URL+path, r)
	m.must(rt, "outsider request", err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// ownerVerifies has the account's managed secret verify pk: while both live
// in the model, the verdict is VALID, whatever others sent (rule 12).
func (m *csmModel) ownerVerifies(rt *rapid.T, pk, root *csmSecret) {
	now := m.now()
	if root == nil {
		return // rule 11 reports it
	}
	if p, _ := m.authenticate(&csmCaller{secret: root}, now); p == nil {
		return
	}
	if p, _ := m.authenticate(&csmCaller{secret: pk}, now); p == nil {
		return
	}
	// The owner verifies from an address the key allows: a key restricted to
	// networks answers NETWORK_NOT_ALLOWED without one, by design (rule 22),
	// whatever anyone else sent.
	var opts []client.VerifyOption
	if pk.key.credits != nil {
		opts = append(opts, client.Cost(0)) // checks, spending nothing (rule 24)
	}
	from := ""
	if nets := pk.key.networks; len(nets) > 0 {
		for _, addr := range slices.Sorted(maps.Keys(csmClientIPs)) {
			if addr != "" && csmAllows(nets, addr) {
				from = addr
				break
			}
		}
		opts = append(opts, client.ClientIP(from))
	}
	v, err := m.env.Client(root.token).VerifyKey(ctx, pk.token, opts...)
	m.must(rt, "the owner's verify of its publishable key", err)
	if cr := pk.key.credits.settle(now); cr != nil && (v.CreditsRemaining == nil || *v.CreditsRemaining != cr.left) {
		rt.Fatalf("CREDITS MOVED (rule 24): the owner's verify of %s says %s left after the outsider's requests; the model has %s",
			m.describeSecret(pk, now), csmInt(v.CreditsRemaining), cr)
	}
	if v.Code != client.VerifyValid {
		rt.Fatalf("OWNER'S KEY TAKEN AWAY (rule 12): the owner's verify of %s from %q answers %s after the outsider's requests; want VALID",
			m.describeSecret(pk, now), from, v.Code)
	}
}

// outsiderLeak reports the victim's publishable key (current or a replaced
// one in grace) to the leak report as GitHub would after the outsider pushed
// a checkout page to a public repository: label false_positive, the key
// unchanged, one audit event per token for its owner (rule 13).
func (m *csmModel) outsiderLeak(rt *rapid.T) {
	if !m.begin() {
		return
	}
	now := m.now()
	var cands []*csmSecret
	for _, s := range m.secrets {
		if k := s.key; k.publishable && (s.token == k.cur || (s.token == k.prev && now.Before(k.prevEnd))) {
			cands = append(cands, s)
		}
	}
	pk := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "reported publishable key #")]
	url := fmt.Sprintf("https://github.com/outsider/checkout/blob/step%d/index.html", m.steps)
	what := "the outsider's leak report of " + m.describeSecret(pk, now)
	labels := m.postLeakReport(rt, what, []map[string]string{{"token": pk.token, "type": "hsrcpay_publishable_key", "url": url, "source": "content"}})
	rt.Logf("step %d: %s → %v", m.steps, what, labels)
	m.stats["outsider leak "+labels[0]]++
	if labels[0] != "false_positive" {
		rt.Fatalf("PUBLIC KEY TREATED AS LEAKED (rule 13): %s labelled %s; want false_positive (public by design, nothing changes)", what, labels[0])
	}
	m.record(csmEvent{action: "update", key: pk.key, actorKind: "platform", actorID: "secret-scanning", changes: csmLeakChanges,
		values: map[string]string{"reason": "publishable_key_reported", "leak_scanner": "github", "leak_source": "content", "leak_url": url}})
}

// postLeakReport signs report as GitHub and posts it; the labels, in order.
func (m *csmModel) postLeakReport(rt *rapid.T, what string, report []map[string]string) []string {
	body, err := json.Marshal(report)
	m.must(rt, "encode the report", err)
	sig, err := m.leakSigner.Sign(body)
	m.must(rt, "sign the report", err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.env.URL+"/secret-scanning/github", bytes.NewReader(body))
	m.must(rt, "leak report request", err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Github-Public-Key-Identifier", m.leakSigner.ID)
	req.Header.Set("Github-Public-Key-Signature", sig)
	res, err := http.DefaultClient.Do(req)
	m.must(rt, what, err)
	b, err := io.ReadAll(res.Body)
	_ = res.Body.Close()
	m.must(rt, "read the answer of "+what, err)
	m.stats[fmt.Sprintf("leak %d", res.StatusCode)]++
	if res.StatusCode != http.StatusOK {
		rt.Fatalf("%s: %d %s", what, res.StatusCode, b)
	}
	var got []struct {
		TokenHash string `json:"token_hash"`
		TokenType string `json:"token_type"`
		Label     string `json:"label"`
	}
	if err := json.Unmarshal(b, &got); err != nil || len(got) != len(report) {
		rt.Fatalf("%s: answer %s (%v)", what, b, err)
	}
	labels := make([]string, len(got))
	for i, v := range got {
		h := sha256.Sum256([]byte(report[i]["token"]))
		if v.TokenHash != hex.EncodeToString(h[:]) || v.TokenType != report[i]["type"] {
			rt.Fatalf("%s: verdict %d is %+v", what, i+1, v)
		}
		labels[i] = v.Label
	}
	return labels
}

// isPeer reports whether k is a custom key holding exactly its account's
// managed secret key's permissions.
func (m *csmModel) isPeer(k *csmKey) bool {
	return !k.managed && !k.publishable && k.perms.equal(csmSetOf(csmCatalog...))
}

// peer turns a peer of some account and mode (made by that account's
// managed secret key first when there is none alive) on the account's
// managed keys: switch either off or on, or rotate the managed secret. Each
// answer follows the model; rule 11 after the step says whether the root
// survived.
func (m *csmModel) peer(rt *rapid.T) {
	if !m.begin() {
		return
	}
	pk := m.victimPK(rt)
	account, mode := pk.key.account, pk.key.mode
	now := m.now()
	var peer *csmSecret
	for _, s := range m.secrets {
		if p, _ := m.authenticate(&csmCaller{secret: s}, now); p != nil && !p.grace && s.key.account == account && s.key.mode == mode &&
			m.isPeer(s.key) {
			peer = s
		}
	}
	if peer == nil {
		root := m.managedSecretOf(account, mode)
		if root == nil {
			return // rule 11 reports it
		}
		m.seq++
		c := &csmCaller{token: root.token, secret: root, label: m.describeSecret(root, now)}
		r := csmCreateReq{account: account, name: fmt.Sprintf("peer %d", m.seq), perms: csmSetOf(csmCatalog...)}
		got := m.createWith(rt, c, r, "make a peer")
		if got == nil {
			return
		}
		peer = m.secrets[len(m.secrets)-1]
	}
	c := &csmCaller{token: peer.token, secret: peer, label: "the peer " + m.describeSecret(peer, m.now())}
	root, public := m.managedKey(account, mode, false), pk.key
	switch act := rapid.SampledFrom([]string{"disable the root", "disable the root", "enable the root", "disable the publishable key",
		"enable the publishable key", "rotate the root"}).Draw(rt, "peer acts"); act {
	case "disable the root":
		m.updateWith(rt, c, root, csmUpdateReq{status: "INACTIVE"})
	case "enable the root":
		m.updateWith(rt, c, root, csmUpdateReq{status: "ACTIVE"})
	case "disable the publishable key":
		m.updateWith(rt, c, public, csmUpdateReq{status: "INACTIVE"})
	case "enable the publishable key":
		m.updateWith(rt, c, public, csmUpdateReq{status: "ACTIVE"})
	case "rotate the root":
		g := rapid.SampledFrom([]int{0, 60}).Draw(rt, "grace minutes")
		m.regenerateWith(rt, c, root, csmRegenReq{id: root.id, grace: &g})
	}
}

// checkRoot holds rule 11: every account's managed secret key is on, not
// deleted, and its current secret is one the model holds (it was shown to
// someone), so the account keeps a working root credential.
func (m *csmModel) checkRoot(rt *rapid.T) {
	for _, k := range m.keys {
		if !k.managed || k.publishable {
			continue
		}
		if k.inactive || k.deleted {
			rt.Fatalf("ROOT LOCKED OUT (rule 11): %s is %s; no credential can switch off an account's root", m.describeKey(k), m.targetName(k))
		}
		if m.managedSecretOf(k.account, k.mode) == nil {
			rt.Fatalf("ROOT LOST (rule 11): nobody holds the current secret of %s", m.describeKey(k))
		}
	}
}

// csmOriginal is a create or regenerate made with an Idempotency-Key and
// answered 2xx: what a replay of it may give back, and to whom.
type csmOriginal struct {
	caller   *csmCaller
	op       string // create or regenerate
	key      string // the Idempotency-Key
	create   csmCreateReq
	regen    csmRegenReq
	at       time.Duration // virtual time of the original
	secret   string        // what it issued
	perms    csmSet
	expires  *time.Time
	networks []string // the answer's key's allowed_networks
	rate     *csmRate // and its own rate limit
	keyID    string   // the answer's key
}

// tapped is a client for token that does not retry and whose answers' headers tap sees.
func (m *csmModel) tapped(rt *rapid.T, token string) (*client.Client, *headerTap) {
	tap := &headerTap{}
	c, err := client.New(m.env.URL, token, client.WithRetries(0, 0), client.WithHTTPClient(&http.Client{Transport: tap}))
	m.must(rt, "client", err)
	return c, tap
}

// replay sends an earlier keyed create or regenerate again, with its
// Idempotency-Key and body, presented by the same credential, a JWT of the
// same subject holding less, any other credential, or the outsider's
// publishable key, and holds the answer to rule 14.
func (m *csmModel) replay(rt *rapid.T) {
	if !m.begin() {
		return
	}
	var recent []*csmOriginal
	for _, o := range m.originals {
		// Kept 24 h by the service clock: older ones may run again, which
		// the model does not follow.
		if m.advanced-o.at < 23*time.Hour {
			recent = append(recent, o)
		}
	}
	if len(recent) == 0 {
		return
	}
	// Half the time a key's rotation of itself when there is one: the
	// exception of issue 18 is rare among random originals.
	var self []*csmOriginal
	for _, o := range recent {
		if s := o.caller.secret; o.op == "regenerate" && s != nil && o.regen.id == s.key.id {
			self = append(self, o)
		}
	}
	if len(self) > 0 && rapid.Bool().Draw(rt, "a rotation of the caller's own key") {
		recent = self
	}
	o := recent[rapid.IntRange(0, len(recent)-1).Draw(rt, "original #")]
	c := o.caller
	switch kind := rapid.SampledFrom([]string{"the same credential", "the same credential", "a JWT of the same subject holding less",
		"another credential", "the outsider's publishable key"}).Draw(rt, "presented by"); kind {
	case "a JWT of the same subject holding less":
		if g := o.caller.jwt; g != nil {
			less := &csmGrant{sub: g.sub, mode: g.mode, accounts: g.accounts, perms: csmSet{}}
			if own := g.perms.ordered(); len(own) > 1 {
				less.perms = csmSetOf(rapid.SliceOfNDistinct(rapid.SampledFrom(own), 0, len(own)-1, rapid.ID[string]).Draw(rt, "fewer permissions")...)
			}
			claims := m.env.JWT.Claims(g.sub, g.accounts, less.perms.list(), string(g.mode))
			c = &csmCaller{token: m.env.JWT.Sign(m.tt, claims), jwt: less, label: fmt.Sprintf("JWT %s %s (less than the original's)", g.sub, less.perms)}
		}
	case "another credential":
		c = m.drawCaller(rt)
	case "the outsider's publishable key":
		pk := m.victimPK(rt)
		c = &csmCaller{token: pk.token, secret: pk, label: "the outsider with " + m.describeSecret(pk, m.now())}
	}
	if m.modeOf(c) != m.modeOf(o.caller) {
		// Idempotency-Keys are kept per account and mode: in another mode
		// the same key names a new request, which is no replay.
		return
	}
	now := m.now()
	cl, tap := m.tapped(rt, c.token)
	var (
		got  *client.APIKey
		err  error
		need string
	)
	presenter := c.label
	if c.secret != nil { // as it stands now (the label is from when it was drawn)
		presenter = m.describeSecret(c.secret, now)
	}
	what := fmt.Sprintf("replay of %s's %s (Idempotency-Key %s) by %s", o.caller.label, o.op, o.key, presenter)
	if o.op == "create" {
		need = csmPermCreate
		got, err = cl.CreateAPIKey(ctx, o.create.account, client.CreateAPIKeyRequest{Name: o.create.name, Permissions: o.create.perms.perms(),
			ExpiresAt: o.create.expires, AllowedNetworks: o.create.networks, RateLimit: o.create.sentRate, Credits: o.create.sentCredits}, client.WithIdempotencyKey(o.key))
	} else {
		need = csmPermUpdate
		got, err = cl.RegenerateAPIKey(ctx, o.regen.id, csmRegenOptions(o.regen, o.key)...)
	}
	a, _ := csmResult(rt, err, map[string]int{"create": 201, "regenerate": 200}[o.op])
	m.stats[fmt.Sprintf("replay %d/%d", a.status, a.code)]++
	rt.Logf("step %d: %s → %d/%d (replayed %v)", m.steps, what, a.status, a.code, got != nil && tap.get("Idempotent-Replayed") == "true")
	p, gate := m.gate(c, need, now)
	same := c.token == o.caller.token
	// What the presenter could obtain directly now: past the gate, and the
	// key the answer holds neither stronger nor longer-lived than it (rules 1–2).
	// Credits as they stand now, the target's and the presenter's (spends
	// moved both since the original).
	var credits *csmCredits
	if k := m.byID[o.keyID]; k != nil {
		credits = k.credits.settle(now)
	}
	could := gate == nil && len(o.perms.minus(p.perms)) == 0 &&
		!(p.isKey && p.expires != nil && (o.expires == nil || o.expires.After(*p.expires))) && csmNetsWithin(o.networks, p.networks) &&
		csmRateWithin(o.rate, p.rate) && csmCreditsWithin(credits, p.creditsAt(now))
	// The exception (issue 18): the presenter made the original, a
	// regenerate of its own key, which replaced it; the key still keeps it
	// as its previous secret (not rotated again since); and it is judged as
	// the secret it was: the key's current secret could regenerate the key
	// directly now.
	own := false
	if s := c.secret; same && o.op == "regenerate" && s != nil && o.regen.id == s.key.id && s.token == s.key.prev {
		k := s.key
		was, g := m.gate(&csmCaller{token: k.cur, secret: &csmSecret{token: k.cur, key: k}}, need, now)
		if g == nil && len(o.perms.minus(was.perms)) == 0 && !(was.expires != nil && (o.expires == nil || o.expires.After(*was.expires))) &&
			csmNetsWithin(o.networks, was.networks) && csmRateWithin(o.rate, was.rate) && csmCreditsWithin(credits, was.creditsAt(now)) {
			own, p = true, was
			m.stats["replay of its own rotation by the replaced secret"]++
		}
	}
	switch {
	case got != nil && tap.get("Idempotent-Replayed") != "true":
		rt.Fatalf("REPLAY RAN AGAIN (rule 14): %s executed a second time (secret %s…)", what, got.Key[:8])
	case got != nil && !same:
		rt.Fatalf("REPLAY TO ANOTHER CREDENTIAL (rule 14): %s received the original's secret; only the credential that made the request may", what)
	case got != nil && gate != nil && !own:
		rt.Fatalf("REPLAY PAST THE POLICY (rule 14): %s received the original's secret; directly it would get %s", what, gate)
	case got != nil:
		m.checkObtained(rt, c, p, csmFromMap(got.Permissions), got.ExpiresAt, now, "replayed "+o.op)
		m.checkNetworksObtained(rt, p, csmShownNetworks(got.AllowedNetworks), "replayed "+o.op+" by "+presenter)
		m.checkRateObtained(rt, p, csmShownRate(got.RateLimit), "replayed "+o.op+" by "+presenter)
		if got.Key != o.secret {
			rt.Fatalf("REPLAY ANSWERED ANOTHER SECRET (rule 14): %s", what)
		}
	case same && (could || own):
		rt.Fatalf("A LOST ANSWER IS LOST (rule 14): %s answered %d/%d; the credential that made it still could (or it is the secret its own rotation replaced), so it gets its answer back", what, a.status, a.code)
	case gate != nil && (a.status != gate.status || a.code != gate.code):
		rt.Fatalf("REPLAY REFUSED OTHERWISE (rule 14): %s answered %d/%d; refused, it gets what the gate says: %s", what, a.status, a.code, gate)
	}
}

// csmRegenOptions are the client options of a regenerate request with an
// Idempotency-Key.
func csmRegenOptions(r csmRegenReq, key string) []client.RegenerateOption {
	opts := []client.RegenerateOption{client.WithIdempotencyKey(key)}
	if r.grace != nil {
		opts = append(opts, client.WithGracePeriod(time.Duration(*r.grace)*time.Minute))
	}
	return opts
}

// remember keeps a keyed original answered 2xx for later replays.
func (m *csmModel) remember(c *csmCaller, op, key string, cr csmCreateReq, rr csmRegenReq, got *client.APIKey) {
	m.originals = append(m.originals, &csmOriginal{caller: c, op: op, key: key, create: cr, regen: rr, at: m.advanced,
		secret: got.Key, perms: csmFromMap(got.Permissions), expires: got.ExpiresAt, networks: csmShownNetworks(got.AllowedNetworks),
		rate: csmShownRate(got.RateLimit), keyID: got.ID})
}

// idempotencyKey is a fresh Idempotency-Key for a keyed original.
func (m *csmModel) idempotencyKey() string {
	m.seq++
	return fmt.Sprintf("csm-%s-%d", m.acctA, m.seq)
}
