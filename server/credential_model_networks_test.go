package server_test

// Allowed networks in TestCredentialSafetyModel (issue 22), written out as
// the model's own rule: a small pool of networks whose containment is a
// table, not internal/apikey's arithmetic. Every request of the model comes
// from the test server's loopback peer (127.0.0.1), so a key restricted to
// networks that hold it works, and one restricted elsewhere is, to the
// model, a secret that authenticates nothing (401 40101, exactly an unknown
// key's answer).
//
// 15. networks never widen: a secret obtained by create or regenerate, and
//     a key updated or deleted, is restricted to a subset of the
//     caller's networks when the caller is restricted (40306), an update
//     never sets networks beyond the caller's, the root is never restricted
//     (42205), and verify says NETWORK_NOT_ALLOWED for a client_ip outside
//     a key's networks (or none given).

import (
	"fmt"
	"slices"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// csmNetworkPool is the networks keys are restricted to, in the order the
// server stores them (netip.Addr order: by family, then address, then the
// shorter prefix first).
var csmNetworkPool = []string{"10.0.0.0/8", "10.1.0.0/16", "127.0.0.0/8", "127.0.0.1/32", "127.0.0.2/32", "2001:db8::/32"}

// csmInside: network → the pool's networks holding it (itself aside).
var csmInside = map[string][]string{
	"10.1.0.0/16":  {"10.0.0.0/8"},
	"127.0.0.1/32": {"127.0.0.0/8"},
	"127.0.0.2/32": {"127.0.0.0/8"},
}

// csmClientIPs are the client addresses verify is told about ("": none), and
// the networks of the pool holding each.
var csmClientIPs = map[string][]string{
	"":           nil,
	"127.0.0.1":  {"127.0.0.0/8", "127.0.0.1/32"},
	"127.0.0.2":  {"127.0.0.0/8", "127.0.0.2/32"},
	"10.1.2.3":   {"10.0.0.0/8", "10.1.0.0/16"},
	"2001:db8::": {"2001:db8::/32"},
}

// csmNetIn reports whether network a lies in network b.
func csmNetIn(a, b string) bool { return a == b || slices.Contains(csmInside[a], b) }

// csmNetsWithin is the rule: a key restricted to inner works from nowhere
// one restricted to outer does not (outer nil: any address).
func csmNetsWithin(inner, outer []string) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		return false
	}
	for _, a := range inner {
		if !slices.ContainsFunc(outer, func(b string) bool { return csmNetIn(a, b) }) {
			return false
		}
	}
	return true
}

// csmCanonical is networks as the server stores and shows them: in the
// pool's order, without those inside another one given; nil for none.
func csmCanonical(in []string) []string {
	var out []string
	for _, n := range csmNetworkPool {
		if !slices.Contains(in, n) {
			continue
		}
		if slices.ContainsFunc(in, func(o string) bool { return o != n && csmNetIn(n, o) }) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// csmAllows reports whether a key restricted to networks works from addr
// (one of csmClientIPs; the model's requests come from 127.0.0.1).
func csmAllows(networks []string, addr string) bool {
	if len(networks) == 0 {
		return true
	}
	return slices.ContainsFunc(networks, func(n string) bool { return slices.Contains(csmClientIPs[addr], n) })
}

// drawNetworks draws a create's or an update's allowed_networks: none (any
// address), the caller's own, a subset of them, or any of the pool's;
// nil means the field is absent, an empty list (updates only) lifts the
// restriction.
func (m *csmModel) drawNetworks(rt *rapid.T, caller []string, update bool) *[]string {
	kinds := []string{"absent", "absent", "the caller's", "within the caller's", "within the caller's", "any of the pool"}
	if update {
		kinds = append(kinds, "none (lifted)")
	}
	var out []string
	switch rapid.SampledFrom(kinds).Draw(rt, "allowed_networks") {
	case "absent":
		return nil
	case "none (lifted)":
		return &[]string{}
	case "the caller's":
		if len(caller) == 0 {
			return nil
		}
		out = slices.Clone(caller)
	case "within the caller's":
		var inside []string
		for _, n := range csmNetworkPool {
			if len(caller) == 0 || csmNetsWithin([]string{n}, caller) {
				inside = append(inside, n)
			}
		}
		out = rapid.SliceOfNDistinct(rapid.SampledFrom(inside), 1, 2, rapid.ID[string]).Draw(rt, "networks")
	default:
		out = rapid.SliceOfNDistinct(rapid.SampledFrom(csmNetworkPool), 1, 3, rapid.ID[string]).Draw(rt, "networks")
	}
	return &out
}

// restricted has an account's root create a custom key restricted to
// networks that hold the model's address (so that it works), or limited to
// a rate of its own, or both, with much of the root's power: the caller kind "restricted key" then turns it on the
// other keys, where rule 15 is decided.
func (m *csmModel) restricted(rt *rapid.T) {
	if !m.begin() {
		return
	}
	account := rapid.SampledFrom([]string{m.acctA, m.acctB}).Draw(rt, "account")
	mode := rapid.SampledFrom(apikey.Modes).Draw(rt, "mode")
	root := m.managedSecretOf(account, mode)
	if root == nil {
		return
	}
	now := m.now()
	c := &csmCaller{token: root.token, secret: root, label: m.describeSecret(root, now)}
	nets := rapid.SampledFrom([][]string{{"127.0.0.0/8"}, {"127.0.0.1/32"}, {"127.0.0.0/8", "10.0.0.0/8"},
		{"127.0.0.1/32", "2001:db8::/32"}, {"127.0.0.2/32", "127.0.0.1/32", "10.1.0.0/16"}}).Draw(rt, "networks")
	r := csmCreateReq{account: account, name: rapid.SampledFrom(csmNames).Draw(rt, "name"),
		perms: m.drawPerms(rt, root.key.perms), networks: &nets}
	switch rapid.SampledFrom([]string{"networks", "a rate limit", "both", "credits", "credits"}).Draw(rt, "restricted by") {
	case "credits":
		// Enough to create and change keys with, few enough that verifies
		// run out; a refill half the time.
		r.networks = nil
		r.credits = &csmCredits{left: rapid.Int64Range(0, 12).Draw(rt, "credits left"), at: now.Truncate(time.Second)}
		if rapid.Bool().Draw(rt, "with a refill") {
			r.credits.refill = &csmRefill{amount: rapid.Int64Range(1, 12).Draw(rt, "refill amount"), daily: rapid.Bool().Draw(rt, "daily"), day: 31}
			if r.credits.refill.daily {
				r.credits.refill.day = 0
			}
		}
		r.sentCredits = r.credits.sent(rt)
	case "a rate limit":
		r.networks = nil
		fallthrough
	case "both":
		p := csmRatePool[rapid.IntRange(0, len(csmRatePool)-1).Draw(rt, "rate #")]
		r.sentRate, r.rate = &client.RateLimit{Limit: p.n, Window: p.window}, &csmRate{n: p.n, secs: csmWindows[p.window].secs}
	}
	m.createWith(rt, c, r, "create restricted")
}

// Per-key rate limits in the model (issue 22), written out: rates as
// (requests, seconds) and their order by cross-multiplication. The limits
// drawn are far above what a run sends, so the model predicts the rule
// (16: rate limits never grow, 40307; the root is never limited, 42205),
// not 429s, which TestPerKeyRateLimit covers.
//
// 16. rate limits never grow: a key with its own rate limit obtains,
//     rotates, changes or deletes only keys limited to no larger a rate
//     (limit/window), never unlimited ones, and sets none larger.

// csmRate is a per-key rate limit: n requests per secs seconds.
type csmRate struct{ n, secs int }

// csmWindows are the windows the model sends, with the second counts and
// the largest whole unit the server answers with.
var csmWindows = map[string]struct {
	secs  int
	shown string
}{"1s": {1, "1s"}, "60s": {60, "1m"}, "1m": {60, "1m"}, "1h": {3600, "1h"}, "24h": {86400, "1d"}, "1d": {86400, "1d"}}

// csmRatePool are the limits drawn: [limit, window as sent].
var csmRatePool = []struct {
	n      int
	window string
}{{1000, "1s"}, {60000, "60s"}, {60000, "1m"}, {2000, "1s"}, {100000, "1m"}, {1000000, "1d"}, {1000000, "24h"}, {500000, "1h"}}

func (r *csmRate) String() string {
	if r == nil {
		return "the mode's default"
	}
	return fmt.Sprintf("%d per %ds", r.n, r.secs)
}

// csmRateWithin: outer nil bounds nothing; inner nil (the mode's default)
// is within no per-key limit; else inner.n/inner.secs ≤ outer.n/outer.secs.
func csmRateWithin(inner, outer *csmRate) bool {
	switch {
	case outer == nil:
		return true
	case inner == nil:
		return false
	}
	return inner.n*outer.secs <= outer.n*inner.secs
}

func csmSameRate(a, b *csmRate) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// csmShownRate is a rate_limit as an answer shows it (nil: absent); a
// window the model never sent reads as 0 seconds, which no model rate has.
func csmShownRate(r *client.RateLimit) *csmRate {
	if r == nil {
		return nil
	}
	for _, w := range csmWindows {
		if w.shown == r.Window {
			return &csmRate{n: r.Limit, secs: w.secs}
		}
	}
	return &csmRate{n: r.Limit}
}

// drawRate draws a create's or an update's rate_limit: absent, the caller's
// own, or any of the pool; the limit as sent and as the model holds it.
func (m *csmModel) drawRate(rt *rapid.T, caller *csmRate) (*client.RateLimit, *csmRate) {
	switch rapid.SampledFrom([]string{"absent", "absent", "the caller's", "any of the pool"}).Draw(rt, "rate_limit") {
	case "absent":
		return nil, nil
	case "the caller's":
		if caller == nil {
			return nil, nil
		}
		for w, v := range csmWindows {
			if v.secs == caller.secs && v.shown == w {
				return &client.RateLimit{Limit: caller.n, Window: w}, &csmRate{n: caller.n, secs: caller.secs}
			}
		}
	}
	p := csmRatePool[rapid.IntRange(0, len(csmRatePool)-1).Draw(rt, "rate #")]
	return &client.RateLimit{Limit: p.n, Window: p.window}, &csmRate{n: p.n, secs: csmWindows[p.window].secs}
}
