package server_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/internal/keys"
)

// csmLeakChanges are the fields a leak report's events name, besides the
// change itself.
var csmLeakChanges = []string{"leak_scanner", "leak_source", "leak_url", "reason"}

// leak sends GitHub's signed report of tokens drawn from every secret the
// run holds (current, replaced in grace or not, dead, of every account and
// mode) and of tokens that are no key's, and holds the server to the model:
// each label (true_positive exactly for a token the store still knows by its
// hash: a key's current secret, deleted or not, or its kept previous one,
// except a publishable key's live secret), a custom key's current secret
// deleting the key, a replaced secret in its grace losing the rest of it,
// one event per change (actor platform / secret-scanning, the report's
// source and URL) and nothing else; the probes and store checks after the
// step then see the secrets die. A publishable key's live secret (current,
// or replaced in its grace) is public by design (issue 17): false_positive,
// nothing changes (the probes and store checks see it live on), and one
// update event per such token per report records the report (reason
// publishable_key_reported, no key field). A managed secret key's current
// secret is never drawn: its rotation issues a secret shown to nobody, which
// the model could not follow (TestReportLeakedKeys covers that case).
func (m *csmModel) leak(rt *rapid.T) {
	if !m.begin() {
		return
	}
	type item struct {
		token string
		s     *csmSecret
		what  string
	}
	now := m.now()
	var cands []*csmSecret
	for _, s := range m.secrets {
		if !(s.key.managed && !s.key.publishable && s.token == s.key.cur) {
			cands = append(cands, s)
		}
	}
	var items []item
	for i, n := 0, rapid.IntRange(1, 4).Draw(rt, "tokens"); i < n; i++ {
		switch kind := rapid.SampledFrom([]string{"a secret of the run", "a secret of the run", "a secret of the run", "a key never issued", "not a key"}).Draw(rt, "token kind"); {
		case kind == "a secret of the run" && len(cands) > 0:
			s := cands[rapid.IntRange(0, len(cands)-1).Draw(rt, "secret #")]
			items = append(items, item{s.token, s, m.describeSecret(s, now)})
		case kind == "not a key":
			items = append(items, item{token: "sk_test_" + strings.Repeat("0", 38), what: "a key-shaped string whose checksum fails"})
		default:
			tok, err := keys.New(keys.KindSecret, rapid.Bool().Draw(rt, "sandbox"))
			m.must(rt, "mint a key never issued", err)
			items = append(items, item{token: tok, what: "a key never issued"})
		}
	}
	url := fmt.Sprintf("https://github.com/octo/csm/blob/step%d/.env", m.steps)
	report := make([]map[string]string, len(items))
	want := make([]string, len(items))
	var whats []string
	for i, it := range items {
		report[i] = map[string]string{"token": it.token, "type": "hsrcpay_secret_key", "url": url, "source": "content"}
		want[i] = "false_positive"
		if it.s != nil && (it.token == it.s.key.cur || (it.s.key.prev != "" && it.token == it.s.key.prev)) && !csmPublic(it.s, now) {
			want[i] = "true_positive"
		}
		whats = append(whats, it.what)
	}
	what := "leak report of " + strings.Join(whats, ", ")
	labels := m.postLeakReport(rt, what, report)
	rt.Logf("step %d: %s → want %v, got %v", m.steps, what, want, labels)
	for i, it := range items {
		if labels[i] != want[i] {
			rt.Fatalf("%s: verdict %d (%s) is %s, want %s", what, i+1, it.what, labels[i], want[i])
		}
		m.stats["leak "+want[i]]++
	}
	// The changes, token by token as the server makes them: a token seen
	// twice in one report (or again in a later one) changes nothing more.
	values := map[string]string{"reason": "leaked", "leak_scanner": "github", "leak_source": "content", "leak_url": url}
	reported := map[string]bool{} // publishable tokens this report recorded
	for _, it := range items {
		if it.s == nil {
			continue
		}
		k := it.s.key
		switch {
		case csmPublic(it.s, now):
			// Public by design: no change; the report recorded once per token.
			if reported[it.token] {
				continue
			}
			reported[it.token] = true
			if it.token == k.cur {
				m.stats["leak recorded a publishable key's current secret"]++
			} else {
				m.stats["leak recorded a publishable key's secret in grace"]++
			}
			v := maps.Clone(values)
			v["reason"] = "publishable_key_reported"
			m.record(csmEvent{action: "update", key: k, actorKind: "platform", actorID: "secret-scanning",
				changes: slices.Clone(csmLeakChanges), values: v})
		case it.token == k.cur && !k.managed && !k.deleted:
			k.deleted = true
			if k.prev != "" && now.Before(k.prevEnd) { // kept, its grace ended (never: custom keys do not rotate)
				k.prevEnd = now
			}
			m.stats["leak deleted a custom key"]++
			v := map[string]string{"deleted": "true"}
			for f, s := range values {
				v[f] = s
			}
			m.record(csmEvent{action: "delete", key: k, actorKind: "platform", actorID: "secret-scanning",
				changes: append([]string{"deleted"}, csmLeakChanges...), values: v})
		case k.prev != "" && it.token == k.prev && now.Before(k.prevEnd):
			m.stats["leak ended a grace"]++
			k.prevEnd = now // the server's clock read during the request is a little later: dead by the next step
			m.record(csmEvent{action: "update", key: k, actorKind: "platform", actorID: "secret-scanning",
				changes: []string{"leak_scanner", "leak_source", "leak_url", "previous_key_expires_at", "reason"}, values: values})
		}
	}
}

// csmPublic: s is a publishable key's live secret (its current one, or its
// replaced one in its grace) at now, which a leak report leaves alone.
func csmPublic(s *csmSecret, now time.Time) bool {
	k := s.key
	return k.publishable && !k.deleted && (s.token == k.cur || (k.prev != "" && s.token == k.prev && now.Before(k.prevEnd)))
}
