package server

import (
	"net/http"
	"net/netip"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"
)

// clientIPExtractor is Echo's IPExtractor for the proxies named in
// Options.TrustedProxies (HSRCPAY_TRUSTED_PROXIES). The client address is
// the one every per-address budget (failed authentications, leak reports)
// is spent from and every audit event records, so only a named proxy may
// set it:
//
//   - With no trusted proxy, or when the immediate peer is not one, it is
//     the peer's own address; X-Forwarded-For is ignored (anyone can send it).
//   - When the peer is a trusted proxy, X-Forwarded-For (all its lines, in
//     order, as one comma-separated list) is read from the right, each
//     entry being the address the hop to its right saw: the first address
//     that is not a trusted proxy is the client. Whatever a client put to
//     the left of it is its own claim and never read, so a client cannot
//     choose its address nor push another's into 42901.
//   - All trusted (the request came from inside): the leftmost address.
//   - A malformed entry (not an IP address: empty, a port, a name) ends the
//     walk: the client is the last good address read, a trusted proxy's
//     (the peer's when the rightmost entry is malformed). Nothing left of
//     a malformed entry can be vouched for, and the proxy that forwarded it
//     then shares the budget of what came through it.
//
// Echo's ExtractIPFromXFFHeader with only TrustIPRange options comes close
// but answers the peer's address on a malformed entry, whatever trusted
// hops were read before it; this walk is small enough to own.
func clientIPExtractor(trusted []netip.Prefix) echo.IPExtractor {
	direct := echo.ExtractIPDirect()
	if len(trusted) == 0 {
		return direct
	}
	isTrusted := func(a netip.Addr) bool {
		return slices.ContainsFunc(trusted, func(p netip.Prefix) bool { return p.Contains(a) })
	}
	return func(r *http.Request) string {
		peer := direct(r)
		last, ok := parseHop(peer)
		if !ok || !isTrusted(last) {
			return peer
		}
		lines := r.Header.Values(echo.HeaderXForwardedFor)
		for i := len(lines) - 1; i >= 0; i-- {
			line := lines[i]
			for {
				// The entries right to left, without splitting the whole
				// header (it may be long: only the walk's part is read).
				cut := strings.LastIndexByte(line, ',')
				a, ok := parseHop(line[cut+1:])
				if !ok {
					return last.String()
				}
				if !isTrusted(a) {
					return a.String()
				}
				last = a
				if cut < 0 {
					break
				}
				line = line[:cut]
			}
		}
		return last.String() // every hop trusted: the leftmost
	}
}

// parseHop reads one address of the chain: an IP address, spaces around it
// and IPv6 brackets ([2001:db8::1]) allowed, a zone dropped, an IPv4-mapped
// IPv6 address read as its IPv4 address (as the trusted prefixes are).
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if len(s) > 2 && s[0] == '[' && s[len(s)-1] == ']' {
		s = s[1 : len(s)-1]
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.WithZone("").Unmap(), true
}
