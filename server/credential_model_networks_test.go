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
	"slices"

	"pgregory.net/rapid"

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
// networks that hold the model's address (so that it works), with much of
// the root's power: the caller kind "restricted key" then turns it on the
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
	m.createWith(rt, c, r, "create restricted")
}
