package apikey

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// MaxNetworks is how many prefixes a key's AllowedNetworks may hold (the
// spec's AllowedNetworks maxItems).
const MaxNetworks = 32

// ParseNetworks reads allowed_networks as sent: addresses (a host: its /32
// or /128) and CIDR prefixes, IPv4-mapped IPv6 read as IPv4, zones refused.
// The result is canonical (masked, sorted, without duplicates or prefixes
// inside another of the list), so that two spellings of the same networks
// are stored, compared and audited alike. An empty list is nil: any address.
func ParseNetworks(in []string) ([]netip.Prefix, error) {
	if len(in) > MaxNetworks {
		return nil, fmt.Errorf("at most %d networks", MaxNetworks)
	}
	out := make([]netip.Prefix, 0, len(in))
	for _, s := range in {
		p, err := parseNetwork(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return canonicalNetworks(out), nil
}

func parseNetwork(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
		}
		a := p.Addr()
		if a.Is4In6() {
			if p.Bits() < 96 {
				return netip.Prefix{}, fmt.Errorf("%q: an IPv4-mapped prefix must be at least /96", s)
			}
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR prefix", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// canonicalNetworks sorts ps, drops duplicates and prefixes inside another
// one of ps; nil for none.
func canonicalNetworks(ps []netip.Prefix) []netip.Prefix {
	if len(ps) == 0 {
		return nil
	}
	slices.SortFunc(ps, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	out := ps[:0]
	for _, p := range ps {
		if !slices.ContainsFunc(out, func(q netip.Prefix) bool { return PrefixWithin(p, q) }) {
			out = append(out, p)
		}
	}
	return slices.Clip(out)
}

// PrefixWithin reports whether every address of p is in q.
func PrefixWithin(p, q netip.Prefix) bool {
	return q.Bits() <= p.Bits() && q.Contains(p.Addr())
}

// NetworksWithin reports whether a key restricted to inner works from no
// address that one restricted to outer does not: outer empty (any address),
// or inner non-empty with every prefix inside one of outer's.
func NetworksWithin(inner, outer []netip.Prefix) bool {
	if len(outer) == 0 {
		return true
	}
	if len(inner) == 0 {
		return false
	}
	for _, p := range inner {
		if !slices.ContainsFunc(outer, func(q netip.Prefix) bool { return PrefixWithin(p, q) }) {
			return false
		}
	}
	return true
}

// AllowsAddress reports whether a key restricted to networks works from
// the client address addr (as the server's trusted-proxy rule yields it): no
// restriction, or addr inside one of them. An address that does not parse
// is outside every network.
func AllowsAddress(networks []netip.Prefix, addr string) bool {
	if len(networks) == 0 {
		return true
	}
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.WithZone("").Unmap()
	return slices.ContainsFunc(networks, func(p netip.Prefix) bool { return p.Contains(a) })
}

// NetworkStrings renders networks as the API and the audit trail show them
// (nil for none).
func NetworkStrings(networks []netip.Prefix) []string {
	if len(networks) == 0 {
		return nil
	}
	out := make([]string, len(networks))
	for i, p := range networks {
		out[i] = p.String()
	}
	return out
}
