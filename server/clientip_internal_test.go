package server

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestTrustedProxiesClientIP: the client address is the peer's unless the
// peer is a named trusted proxy; then the rightmost X-Forwarded-For address
// that is not one; all trusted, the leftmost; a malformed entry ends the
// walk at the last good address.
func TestTrustedProxiesClientIP(t *testing.T) {
	loopback := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	lb := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ff::/48")}
	for _, c := range []struct {
		name    string
		trusted []netip.Prefix
		peer    string
		xff     []string
		want    string
	}{
		{"nothing trusted: the peer, XFF ignored", nil, "127.0.0.1:5000", []string{"203.0.113.9"}, "127.0.0.1"},
		{"peer not trusted: the peer", lb, "198.51.100.3:5000", []string{"203.0.113.9"}, "198.51.100.3"},
		{"private neighbour not named: the peer", loopback, "10.1.2.3:5000", []string{"203.0.113.9"}, "10.1.2.3"},
		{"trusted peer, no XFF: the peer", lb, "10.0.0.2:5000", nil, "10.0.0.2"},
		{"one hop", lb, "10.0.0.2:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"rightmost untrusted", lb, "10.0.0.2:5000", []string{"198.51.100.1, 203.0.113.9, 10.9.9.9"}, "203.0.113.9"},
		{"victim, then the address the proxy saw", lb, "10.0.0.2:5000", []string{"198.51.100.77,203.0.113.66"}, "203.0.113.66"},
		{"several lines are one list", lb, "10.0.0.2:5000", []string{"198.51.100.1, 203.0.113.9", "10.0.0.7"}, "203.0.113.9"},
		{"all trusted: the leftmost", lb, "10.0.0.2:5000", []string{"10.0.0.5, 10.0.0.6"}, "10.0.0.5"},
		{"malformed: the last good address", lb, "10.0.0.2:5000", []string{"198.51.100.1, junk, 10.0.0.9"}, "10.0.0.9"},
		{"malformed rightmost: the peer", lb, "10.0.0.2:5000", []string{"198.51.100.1, 203.0.113.9:443"}, "10.0.0.2"},
		{"empty entry is malformed", lb, "10.0.0.2:5000", []string{"198.51.100.1, , 10.0.0.9"}, "10.0.0.9"},
		{"IPv6 hops, brackets", lb, "[2001:db8:ff::2]:5000", []string{"2001:db8:1::1, [2001:db8:ff::3]"}, "2001:db8:1::1"},
		{"IPv4-mapped peer", lb, "[::ffff:10.0.0.2]:5000", []string{"203.0.113.9"}, "203.0.113.9"},
		{"IPv4-mapped entry", lb, "10.0.0.2:5000", []string{"::ffff:203.0.113.9"}, "203.0.113.9"},
	} {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "/", nil)
		r.RemoteAddr = c.peer
		for _, v := range c.xff {
			r.Header.Add("X-Forwarded-For", v)
		}
		if got := clientIPExtractor(c.trusted)(r); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}
