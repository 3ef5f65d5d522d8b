package server_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// leakItem is one entry of GitHub's report, as GitHub sends it.
type leakItem struct {
	Token  string `json:"token"`
	Type   string `json:"type"`
	URL    string `json:"url"`
	Source string `json:"source"`
}

type leakVerdict struct {
	TokenHash string `json:"token_hash"`
	TokenType string `json:"token_type"`
	Label     string `json:"label"`
}

const leakURL = "https://github.com/octo/demo/blob/1a2b3c/config.env"

func leakReport(tokens ...string) []leakItem {
	out := make([]leakItem, len(tokens))
	for i, tok := range tokens {
		out[i] = leakItem{Token: tok, Type: "hsrcpay_secret_key", URL: leakURL, Source: "content"}
	}
	return out
}

// postLeaks sends body to the leak route with the given headers (nil
// values: header absent) and returns the status, the answer and the request id.
func postLeaks(t *testing.T, env *testenv.Env, body []byte, headers map[string]string) (int, []byte, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/secret-scanning/github", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	b, _ := io.ReadAll(resp.Body)
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	return resp.StatusCode, b, resp.Header.Get("X-Request-Id")
}

// signedLeaks sends a report signed by signer and wants a 200.
func signedLeaks(t *testing.T, env *testenv.Env, signer secretscan.Signer, items []leakItem) ([]leakVerdict, string) {
	t.Helper()
	body, err := json.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	status, b, rid := postLeaks(t, env, body, signedHeaders(t, signer, body))
	if status != http.StatusOK {
		t.Fatalf("report: %d %s", status, b)
	}
	var out []leakVerdict
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out) != len(items) {
		t.Fatalf("%d verdicts for %d tokens: %s", len(out), len(items), b)
	}
	for i, v := range out {
		sum := sha256.Sum256([]byte(items[i].Token))
		if v.TokenHash != hex.EncodeToString(sum[:]) || v.TokenType != items[i].Type {
			t.Fatalf("verdict %d = %+v for %+v", i, v, items[i])
		}
	}
	return out, rid
}

func signedHeaders(t *testing.T, signer secretscan.Signer, body []byte) map[string]string {
	t.Helper()
	sig, err := signer.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{"Github-Public-Key-Identifier": signer.ID, "Github-Public-Key-Signature": sig}
}

func labels(vs []leakVerdict) string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Label)
	}
	return strings.Join(out, ",")
}

// eventCount counts every audit event of account in both modes, from the store.
func eventCount(t *testing.T, env *testenv.Env, account string) int {
	t.Helper()
	n := 0
	for _, mode := range apikey.Modes {
		evs, err := env.Store.Repo(mode).AuditChain(ctx, account)
		if err != nil {
			t.Fatal(err)
		}
		n += len(evs)
	}
	return n
}

func storedKey(t *testing.T, env *testenv.Env, mode apikey.Mode, id string) *apikey.Key {
	t.Helper()
	k, err := env.Store.Repo(mode).GetKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// lastEvent is the newest event about key id, from the store.
func lastEvent(t *testing.T, env *testenv.Env, mode apikey.Mode, account, id string) (action string, actor apikey.Actor, clientIP string, changes map[string]any) {
	t.Helper()
	evs, err := env.Store.Repo(mode).AuditChain(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].KeyID == id {
			return evs[i].Action, evs[i].Actor, evs[i].ClientIP, evs[i].Changes
		}
	}
	t.Fatalf("no event about %s", id)
	return
}

func wantLeakEvent(t *testing.T, env *testenv.Env, mode apikey.Mode, account, id, action, requestID string) map[string]any {
	t.Helper()
	got, actor, ip, changes := lastEvent(t, env, mode, account, id)
	if got != action || actor.Kind != apikey.ActorPlatform || actor.ID != "secret-scanning" || actor.RequestID != requestID || ip == "" {
		t.Fatalf("event %s by %+v from %q, want %s by the platform's secret-scanning in request %s", got, actor, ip, action, requestID)
	}
	if changes["reason"] != "leaked" || changes["leak_url"] != leakURL || changes["leak_source"] != "content" || changes["leak_scanner"] != "github" {
		t.Fatalf("changes %v", changes)
	}
	return changes
}

// stillAuthenticates: the secret passes authentication (a publishable key is
// then refused by the permission check, 403, never 401).
func stillAuthenticates(t *testing.T, env *testenv.Env, secret string) {
	t.Helper()
	_, err := getKey(t, env.Client(secret), "key_probe0000000000")
	var ce *client.Error
	if err != nil && asAPIError(err, &ce) && ce.StatusCode == http.StatusUnauthorized {
		t.Fatalf("%s… no longer authenticates: %v", secret[:8], err)
	}
}

// POST /secret-scanning/github: a subtest per documented status and rule.
func TestReportLeakedKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		signer, ghKeys := testenv.NewLeakSigner(t, "gh-key-1")
		cfg.SecretScanning = ghKeys
		mt := metrics.New()
		cfg.Metrics = mt
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]

		t.Run("200 a leaked custom key is deleted at once, once", func(t *testing.T) {
			k := customKey(t, env, m, "leaky", client.Permissions{"account:api:key": {"read"}}, nil)
			stillAuthenticates(t, env, k.Key)
			before := eventCount(t, env, acct)
			vs, rid := signedLeaks(t, env, signer, leakReport(k.Key))
			if labels(vs) != "true_positive" {
				t.Fatalf("labels %s", labels(vs))
			}
			refusedNow(t, env, k.Key)
			if sk := storedKey(t, env, sandbox, k.ID); !sk.Deleted {
				t.Fatalf("not deleted: %+v", sk)
			}
			if changes := wantLeakEvent(t, env, sandbox, acct, k.ID, "delete", rid); changes["deleted"] != true {
				t.Fatalf("changes %v", changes)
			}
			if n := eventCount(t, env, acct); n != before+1 {
				t.Fatalf("%d events written, want 1", n-before)
			}
			// The same report again (GitHub retries): the same answer, nothing written.
			vs, _ = signedLeaks(t, env, signer, leakReport(k.Key, k.Key))
			if labels(vs) != "true_positive,true_positive" || eventCount(t, env, acct) != before+1 {
				t.Fatalf("again: %s, %d events", labels(vs), eventCount(t, env, acct)-before)
			}
			const series = "hsrcpay_secret_scanning_tokens_total"
			if d, n := counter(t, mt, series, "action", "deleted"), counter(t, mt, series, "action", "none"); d != 1 || n != 2 {
				t.Fatalf("%s: deleted %v, none %v; want 1 and 2", series, d, n)
			}
		})

		t.Run("200 the same report sent concurrently acts once", func(t *testing.T) {
			const owner = "acct_leak_race"
			mm := env.Bootstrap(owner)[sandbox]
			k := customKey(t, env, m, "raced", client.Permissions{}, nil)
			before := eventCount(t, env, owner) + eventCount(t, env, acct)
			body, _ := json.Marshal(leakReport(k.Key, mm.Secret))
			headers := signedHeaders(t, signer, body)
			var wg sync.WaitGroup
			answers := make([]string, 8)
			for i := range answers {
				wg.Add(1)
				go func() { // no t.Fatal off the test's goroutine: answers are checked below
					defer wg.Done()
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, env.URL+"/secret-scanning/github", bytes.NewReader(body))
					req.Header.Set("Content-Type", "application/json")
					for h, v := range headers {
						req.Header.Set(h, v)
					}
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						answers[i] = err.Error()
						return
					}
					b, _ := io.ReadAll(res.Body)
					_ = res.Body.Close()
					answers[i] = fmt.Sprintf("%d %s", res.StatusCode, b)
				}()
			}
			wg.Wait()
			for _, a := range answers {
				if !strings.HasPrefix(a, "200 ") || strings.Count(a, "true_positive") != 2 {
					t.Fatalf("answer %s", a)
				}
			}
			if n := eventCount(t, env, owner) + eventCount(t, env, acct) - before; n != 2 { // one delete, one rotation
				t.Fatalf("%d events for 8 identical reports, want 2", n)
			}
			refusedNow(t, env, k.Key)
			refusedNow(t, env, mm.Secret)
		})

		t.Run("200 a leaked managed secret key is rotated without grace, in its own mode", func(t *testing.T) {
			const owner = "acct_leak_managed"
			both := env.Bootstrap(owner)
			sb, live := both[apikey.Sandbox], both[apikey.Live]
			vs, rid := signedLeaks(t, env, signer, leakReport(sb.Secret, live.Secret))
			if labels(vs) != "true_positive,true_positive" {
				t.Fatalf("labels %s", labels(vs))
			}
			refusedNow(t, env, sb.Secret)
			refusedNow(t, env, live.Secret)
			for _, c := range []struct {
				mode   apikey.Mode
				id     string
				secret string
			}{{apikey.Sandbox, sb.SecretID, sb.Secret}, {apikey.Live, live.SecretID, live.Secret}} {
				k := storedKey(t, env, c.mode, c.id)
				if k.Deleted || k.Status != apikey.StatusActive || bytes.Equal(k.SecretHash, keys.Hash(c.secret)) {
					t.Fatalf("%s: not rotated: %+v", c.id, k)
				}
				if k.PrevSecretExpiresAt == nil || k.PrevSecretExpiresAt.After(time.Now()) {
					t.Fatalf("%s: the leaked secret keeps a grace: %v", c.id, k.PrevSecretExpiresAt)
				}
				wantLeakEvent(t, env, c.mode, owner, c.id, "regenerate", rid)
			}
			// The publishable keys are untouched.
			stillAuthenticates(t, env, sb.Publishable)
			stillAuthenticates(t, env, live.Publishable)
			// The owner fetches the new secret: the platform rotates again
			// (or a person with a JWT regenerates), and it works.
			issued, err := env.Server.Service.RotateManaged(ctx, owner, apikey.Sandbox)
			if err != nil {
				t.Fatal(err)
			}
			for _, is := range issued {
				stillAuthenticates(t, env, is.Secret)
			}
			before := eventCount(t, env, owner)
			vs, _ = signedLeaks(t, env, signer, leakReport(live.Secret))
			if labels(vs) != "true_positive" || eventCount(t, env, owner) != before {
				t.Fatalf("again: %s, %d events", labels(vs), eventCount(t, env, owner)-before)
			}
		})

		t.Run("200 a replaced secret in its grace loses the grace; the current one keeps working", func(t *testing.T) {
			const owner = "acct_leak_grace"
			mm := env.Bootstrap(owner)[sandbox]
			fresh, err := env.Client(mm.Secret).RegenerateAPIKey(ctx, mm.SecretID, client.WithGracePeriod(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			stillAuthenticates(t, env, mm.Secret) // in grace
			vs, rid := signedLeaks(t, env, signer, leakReport(mm.Secret))
			if labels(vs) != "true_positive" {
				t.Fatalf("labels %s", labels(vs))
			}
			refusedNow(t, env, mm.Secret)
			stillAuthenticates(t, env, fresh.Key)
			if changes := wantLeakEvent(t, env, sandbox, owner, mm.SecretID, "update", rid); changes["previous_key_expires_at"] == nil {
				t.Fatalf("changes %v", changes)
			}
			before := eventCount(t, env, owner)
			if vs, _ = signedLeaks(t, env, signer, leakReport(mm.Secret)); labels(vs) != "true_positive" || eventCount(t, env, owner) != before {
				t.Fatalf("again: %s", labels(vs))
			}
		})

		t.Run("200 tokens never ours are false positives and change nothing", func(t *testing.T) {
			never, _ := keys.New(keys.KindSecret, false)
			neverTest, _ := keys.New(keys.KindPublishable, true)
			k := customKey(t, env, m, "bystander", client.Permissions{}, nil)
			last := "A"
			if strings.HasSuffix(k.Key, "A") {
				last = "B"
			}
			badSum := k.Key[:len(k.Key)-1] + last
			otherMode := strings.Replace(k.Key, "_test_", "_live_", 1) // its checksum fails too
			before := eventCount(t, env, acct)
			vs, _ := signedLeaks(t, env, signer, leakReport(never, neverTest, badSum, otherMode, "hello world", "sk_live_"+strings.Repeat("x", 38), "ghp_notours"))
			if want := strings.TrimSuffix(strings.Repeat("false_positive,", 7), ","); labels(vs) != want {
				t.Fatalf("labels %s", labels(vs))
			}
			if eventCount(t, env, acct) != before {
				t.Fatal("a false positive wrote an event")
			}
			stillAuthenticates(t, env, k.Key)
		})

		t.Run("401 unsigned or badly signed reports are refused and write nothing", func(t *testing.T) {
			k := customKey(t, env, m, "target", client.Permissions{}, nil)
			body, _ := json.Marshal(leakReport(k.Key))
			good := signedHeaders(t, signer, body)
			otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			forged := signedHeaders(t, secretscan.Signer{ID: signer.ID, Key: otherKey}, body)
			otherBody, _ := json.Marshal(leakReport(k.Key, "x"))
			before := eventCount(t, env, acct)
			for name, h := range map[string]map[string]string{
				"no headers":         nil,
				"no signature":       {"Github-Public-Key-Identifier": signer.ID},
				"no key identifier":  {"Github-Public-Key-Signature": good["Github-Public-Key-Signature"]},
				"unknown key id":     {"Github-Public-Key-Identifier": "gh-key-404", "Github-Public-Key-Signature": good["Github-Public-Key-Signature"]},
				"signature not b64":  {"Github-Public-Key-Identifier": signer.ID, "Github-Public-Key-Signature": "%%%"},
				"signed by another":  forged,
				"another body's sig": signedHeaders(t, signer, otherBody),
			} {
				status, b, _ := postLeaks(t, env, body, h)
				if status != http.StatusUnauthorized || !strings.Contains(string(b), `"code":40104`) {
					t.Fatalf("%s: %d %s", name, status, b)
				}
			}
			if eventCount(t, env, acct) != before {
				t.Fatal("a refused report wrote an event")
			}
			stillAuthenticates(t, env, k.Key)
		})

		t.Run("400 a signed body that is not a report", func(t *testing.T) {
			for _, body := range []string{`{}`, `[]`, `[{"type":"x"}]`} {
				status, b, _ := postLeaks(t, env, []byte(body), signedHeaders(t, signer, []byte(body)))
				if status != http.StatusBadRequest || !strings.Contains(string(b), `"code":40000`) {
					t.Fatalf("%s: %d %s", body, status, b)
				}
			}
		})
	})
}

func TestReportLeakedKeysOff(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	signer, _ := testenv.NewLeakSigner(t, "gh-key-1")
	body := []byte(`[{"token":"x","type":"t","url":"","source":"content"}]`)
	status, b, _ := postLeaks(t, env, body, signedHeaders(t, signer, body))
	if status != http.StatusNotFound || !strings.Contains(string(b), `"code":40403`) {
		t.Fatalf("%d %s", status, b)
	}
}

// Each client address has its own budget of reports; failed signatures
// spend its failed-authentication budget, as bad bearer tokens do.
func TestReportLeakedKeysRateLimits(t *testing.T) {
	signer, ghKeys := testenv.NewLeakSigner(t, "gh-key-1")
	env := testenv.New(t, testenv.Config{SecretScanning: ghKeys, SecretScanningLimit: 2, AuthFailureLimit: 2, TrustedProxies: []string{"127.0.0.0/8", "::1/128"}})
	body := []byte(`[{"token":"x","type":"t","url":"","source":"content"}]`)
	from := func(addr string, h map[string]string) (int, string) {
		hh := map[string]string{"X-Forwarded-For": addr}
		for k, v := range h {
			hh[k] = v
		}
		status, b, _ := postLeaks(t, env, body, hh)
		return status, string(b)
	}
	good := signedHeaders(t, signer, body)
	for i := 0; i < 2; i++ {
		if status, b := from("203.0.113.1", good); status != http.StatusOK {
			t.Fatalf("report %d: %d %s", i+1, status, b)
		}
	}
	if status, b := from("203.0.113.1", good); status != http.StatusTooManyRequests || !strings.Contains(b, `"code":42900`) {
		t.Fatalf("third report: %d %s", status, b)
	}
	if status, b := from("203.0.113.2", good); status != http.StatusOK {
		t.Fatalf("another address: %d %s", status, b)
	}
	bad := map[string]string{"Github-Public-Key-Identifier": signer.ID, "Github-Public-Key-Signature": "AAAA"}
	for i := 0; i < 2; i++ {
		if status, b := from("203.0.113.3", bad); status != http.StatusUnauthorized {
			t.Fatalf("bad signature %d: %d %s", i+1, status, b)
		}
	}
	if status, b := from("203.0.113.3", bad); status != http.StatusTooManyRequests || !strings.Contains(b, `"code":42901`) {
		t.Fatalf("third bad signature: %d %s", status, b)
	}
}

// A leak reported to one replica is refused by the other within the cache
// bound (1 s with Redis), though the other had it cached: the leak report
// announces its changes after commit as every use case does.
func TestLeakedKeyRefusedAcrossReplicas(t *testing.T) {
	rurl := redisURL(t)
	url := storetest.FreshPostgresDB(t)
	signer, ghKeys := testenv.NewLeakSigner(t, "gh-key-1")
	mb := metrics.New()
	a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: time.Minute, SecretScanning: ghKeys})
	b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), RedisURL: rurl, CredentialCacheTTL: time.Minute, Metrics: mb})
	a.WaitCredentialCacheServing()
	b.WaitCredentialCacheServing()
	m := a.Bootstrap(acct)[apikey.Sandbox]
	k := customKey(t, a, m, "leaked on a", client.Permissions{"account:api:key": {"read"}}, nil)
	warm(t, b, k.Key, m.Secret)
	if cacheHits(t, mb) == 0 {
		t.Fatal("replica b's cache served no hits: this test would prove nothing")
	}
	start := time.Now()
	if vs, _ := signedLeaks(t, a, signer, leakReport(k.Key, m.Secret)); labels(vs) != "true_positive,true_positive" {
		t.Fatalf("labels %s", labels(vs))
	}
	t.Logf("custom key deleted: refused by the other replica after %v", refusedWithin(t, b, k.Key, start, time.Second))
	t.Logf("managed key rotated: refused by the other replica after %v", refusedWithin(t, b, m.Secret, start, time.Second))
}

// A publishable key (pk_) is public by design, embedded in checkout pages: a
// leak report naming it must not rotate or revoke it (issue 17), or anyone
// could break a merchant's checkout by pushing the page to a public
// repository. Its label is false_positive, the key does not change at all,
// and each report records one event (reason publishable_key_reported) that
// the owner can read through the API.
func TestReportLeakedPublishableKey(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		signer, ghKeys := testenv.NewLeakSigner(t, "gh-key-1")
		cfg.SecretScanning = ghKeys
		mt := metrics.New()
		cfg.Metrics = mt
		env := testenv.New(t, cfg)

		t.Run("its current secret, live and sandbox: nothing changes, one event per report", func(t *testing.T) {
			const owner = "acct_leak_pk"
			both := env.Bootstrap(owner)
			for _, mode := range apikey.Modes {
				m := both[mode]
				c := env.Client(m.Secret) // the owner, in the key's mode
				view, stored := publishableBefore(t, env, c, mode, m.PublishableID)
				env.Clock.Advance(time.Minute) // any write would now move updated_at
				var rids []string
				for n := 1; n <= 2; n++ { // reporting again records again and still changes nothing
					before := eventCount(t, env, owner)
					vs, rid := signedLeaks(t, env, signer, leakReport(m.Publishable))
					if labels(vs) != "false_positive" {
						t.Fatalf("%s report %d: labels %s", mode, n, labels(vs))
					}
					if got := eventCount(t, env, owner) - before; got != 1 {
						t.Fatalf("%s report %d: %d events written, want 1", mode, n, got)
					}
					rids = append(rids, rid)
					publishableUnchanged(t, env, c, mode, m.Publishable, view, stored, false)
					wantPublishableReported(t, c, owner, m.PublishableID, rids)
				}
			}
			const series = "hsrcpay_secret_scanning_tokens_total"
			if p := counter(t, mt, series, "action", "public"); p != 4 {
				t.Fatalf("%s{action=public} = %v, want 4", series, p)
			}
		})

		t.Run("named twice in one report beside a leaked key: one event for it", func(t *testing.T) {
			const owner = "acct_leak_pk_twice"
			m := env.Bootstrap(owner)[sandbox]
			c := env.Client(m.Secret)
			k, err := c.CreateAPIKey(ctx, owner, newKeyReq("leaky", client.Permissions{}))
			if err != nil {
				t.Fatal(err)
			}
			view, stored := publishableBefore(t, env, c, sandbox, m.PublishableID)
			before := eventCount(t, env, owner)
			vs, rid := signedLeaks(t, env, signer, leakReport(m.Publishable, k.Key, m.Publishable))
			if labels(vs) != "false_positive,true_positive,false_positive" {
				t.Fatalf("labels %s", labels(vs))
			}
			if got := eventCount(t, env, owner) - before; got != 2 { // the custom key's delete, the publishable key's report
				t.Fatalf("%d events written, want 2", got)
			}
			refusedNow(t, env, k.Key)
			publishableUnchanged(t, env, c, sandbox, m.Publishable, view, stored, false)
			wantPublishableReported(t, c, owner, m.PublishableID, []string{rid})
		})

		t.Run("its replaced secret in grace: nothing changes; once the grace ended, dead as any", func(t *testing.T) {
			const owner = "acct_leak_pk_grace"
			m := env.Bootstrap(owner)[sandbox]
			c := env.Client(m.Secret)
			fresh, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithGracePeriod(time.Hour))
			if err != nil {
				t.Fatal(err)
			}
			view, stored := publishableBefore(t, env, c, sandbox, m.PublishableID)
			before := eventCount(t, env, owner)
			vs, rid := signedLeaks(t, env, signer, leakReport(m.Publishable))
			if labels(vs) != "false_positive" {
				t.Fatalf("labels %s", labels(vs))
			}
			if got := eventCount(t, env, owner) - before; got != 1 {
				t.Fatalf("%d events written, want 1", got)
			}
			publishableUnchanged(t, env, c, sandbox, m.Publishable, view, stored, true)
			stillAuthenticates(t, env, fresh.Key)
			wantPublishableReported(t, c, owner, m.PublishableID, []string{rid})

			env.Clock.Advance(2 * time.Hour) // the grace ends: the old secret is dead
			refusedNow(t, env, m.Publishable)
			before = eventCount(t, env, owner)
			if vs, _ = signedLeaks(t, env, signer, leakReport(m.Publishable)); labels(vs) != "true_positive" || eventCount(t, env, owner) != before {
				t.Fatalf("after the grace: %s, %d events", labels(vs), eventCount(t, env, owner)-before)
			}
			stillAuthenticates(t, env, fresh.Key)
		})
	})
}

// publishableBefore is key id as its owner sees it (c) and as stored.
func publishableBefore(t *testing.T, env *testenv.Env, c *client.Client, mode apikey.Mode, id string) (*client.APIKeyView, *apikey.Key) {
	t.Helper()
	v, err := c.GetAPIKey(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return v, storedKey(t, env, mode, id)
}

// publishableUnchanged: secret (a publishable key's, current or in its grace)
// still authenticates and verifies VALID through the client, and its key is
// as it was: the view (but its last use, which verify moves) and the stored
// secrets, grace, status and updated_at.
func publishableUnchanged(t *testing.T, env *testenv.Env, c *client.Client, mode apikey.Mode, secret string, view *client.APIKeyView, stored *apikey.Key, inGrace bool) {
	t.Helper()
	stillAuthenticates(t, env, secret)
	v, err := c.VerifyKey(ctx, secret)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Valid || v.Code != client.VerifyValid || v.ID != view.ID || v.Type != client.TypePublishable || v.InGracePeriod != inGrace {
		t.Fatalf("verify of the reported publishable key: %+v", v)
	}
	now, err := c.GetAPIKey(ctx, view.ID)
	if err != nil {
		t.Fatal(err)
	}
	a, b := *view, *now
	a.LastUsedAt, a.LastUsedIP, b.LastUsedAt, b.LastUsedIP = nil, nil, nil, nil
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("the reported publishable key's view changed:\nbefore %+v\nafter  %+v", a, b)
	}
	if a.KeyHint == nil || b.KeyHint == nil || *a.KeyHint != *b.KeyHint || !a.UpdatedAt.Equal(b.UpdatedAt) {
		t.Fatalf("hint %v → %v, updated_at %v → %v", a.KeyHint, b.KeyHint, a.UpdatedAt, b.UpdatedAt)
	}
	k := storedKey(t, env, mode, view.ID)
	if !bytes.Equal(k.SecretHash, stored.SecretHash) || !bytes.Equal(k.PrevSecretHash, stored.PrevSecretHash) ||
		!reflect.DeepEqual(k.PrevSecretExpiresAt, stored.PrevSecretExpiresAt) || k.Status != stored.Status ||
		k.Deleted != stored.Deleted || !k.UpdatedAt.Equal(stored.UpdatedAt) {
		t.Fatalf("the reported publishable key changed in the store:\nbefore %+v\nafter  %+v", stored, k)
	}
}

// wantPublishableReported: the owner's audit list (through the client) holds
// exactly one publishable_key_reported event about key id per report, in
// requestIDs (oldest first), each by the platform's secret scanning with no
// key field in its changes, and the account's chain in that mode verifies.
func wantPublishableReported(t *testing.T, c *client.Client, account, id string, requestIDs []string) {
	t.Helper()
	var all, reported []client.AuditEvent
	for e, err := range c.ListAuditEvents(ctx, account, client.ListAuditEventsOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, e)
		if e.KeyID == id && e.Changes["reason"] == "publishable_key_reported" {
			reported = append(reported, e)
		}
	}
	if err := client.VerifyAuditChain(all); err != nil {
		t.Fatalf("audit chain: %v", err)
	}
	if len(reported) != len(requestIDs) {
		t.Fatalf("%d publishable_key_reported events about %s, want %d", len(reported), id, len(requestIDs))
	}
	want := map[string]any{"reason": "publishable_key_reported", "leak_scanner": "github", "leak_source": "content", "leak_url": leakURL}
	for i, e := range reported { // newest first
		rid := requestIDs[len(requestIDs)-1-i]
		if e.Action != client.AuditUpdate || e.Actor.Kind != client.CreatedByPlatform || e.Actor.ID != "secret-scanning" || e.Actor.RequestID != rid || e.ClientIP == "" {
			t.Fatalf("event %s by %+v from %q, want update by the platform's secret-scanning in request %s", e.Action, e.Actor, e.ClientIP, rid)
		}
		if !reflect.DeepEqual(e.Changes, want) {
			t.Fatalf("changes %v, want %v", e.Changes, want)
		}
	}
}
