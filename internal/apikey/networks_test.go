package apikey_test

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

func TestParseNetworks(t *testing.T) {
	for _, c := range []struct {
		in   []string
		want []string // nil with bad: refused
		bad  bool
	}{
		{in: nil, want: nil},
		{in: []string{}, want: nil},
		{in: []string{"10.1.2.3/8", "203.0.113.7", "2001:db8::1"}, want: []string{"10.0.0.0/8", "203.0.113.7/32", "2001:db8::1/128"}},
		{in: []string{"10.1.0.0/16", "10.0.0.0/8", "10.2.3.4"}, want: []string{"10.0.0.0/8"}}, // inside another: dropped
		{in: []string{"::ffff:10.0.0.1", "::ffff:10.0.0.0/104"}, want: []string{"10.0.0.0/8"}},
		{in: []string{"0.0.0.0/0", "::/0"}, want: []string{"0.0.0.0/0", "::/0"}},
		{in: []string{"10.0.0.0/33"}, bad: true},
		{in: []string{"fe80::1%eth0"}, bad: true},
		{in: []string{"::ffff:0:0/95"}, bad: true},
		{in: []string{"example.com"}, bad: true},
		{in: make([]string, 33), bad: true},
	} {
		got, err := apikey.ParseNetworks(c.in)
		if c.bad {
			if err == nil {
				t.Errorf("%v: accepted as %v", c.in, got)
			}
			continue
		}
		if err != nil || !slices.Equal(apikey.NetworkStrings(got), c.want) {
			t.Errorf("%v: %v, %v; want %v", c.in, apikey.NetworkStrings(got), err, c.want)
		}
	}
}

func TestNetworksWithinAndAllows(t *testing.T) {
	p := func(s ...string) []netip.Prefix {
		out, err := apikey.ParseNetworks(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, c := range []struct {
		inner, outer []netip.Prefix
		want         bool
	}{
		{nil, nil, true},
		{p("10.0.0.0/8"), nil, true},
		{nil, p("10.0.0.0/8"), false}, // any address is no subset
		{p("10.1.0.0/16", "10.2.0.1"), p("10.0.0.0/8"), true},
		{p("10.0.0.0/7"), p("10.0.0.0/8"), false},
		{p("::ffff:10.0.0.1"), p("10.0.0.0/8"), true},
		{p("2001:db8::/48"), p("10.0.0.0/8", "2001:db8::/32"), true},
		{p("::/0"), p("0.0.0.0/0"), false},
	} {
		if got := apikey.NetworksWithin(c.inner, c.outer); got != c.want {
			t.Errorf("NetworksWithin(%v, %v) = %v", c.inner, c.outer, got)
		}
	}
	n := p("10.0.0.0/8", "2001:db8::/32")
	for addr, want := range map[string]bool{"10.9.9.9": true, "::ffff:10.0.0.1": true, "2001:db8::5": true, "11.0.0.1": false, "": false, "junk": false} {
		if got := apikey.AllowsAddress(n, addr); got != want {
			t.Errorf("AllowsAddress(%q) = %v", addr, got)
		}
	}
	if !apikey.AllowsAddress(nil, "") {
		t.Error("an unrestricted key refused")
	}
}

func TestRateLimits(t *testing.T) {
	for _, c := range []struct {
		limit  int
		window string
		want   string // "" refused
	}{
		{100, "1m", "100/1m"}, {1, "1s", "1/1s"}, {5, "60s", "5/1m"}, {5, "24h", "5/1d"}, {5, "1d", "5/1d"}, {5, "90m", "5/90m"},
		{1000000, "86400s", "1000000/1d"}, {0, "1m", ""}, {1000001, "1m", ""}, {5, "2d", ""}, {5, "86401s", ""},
		{5, "0s", ""}, {5, "1w", ""}, {5, "m", ""}, {5, "-1s", ""}, {5, "1.5h", ""},
	} {
		r, err := apikey.ParseRateLimit(c.limit, c.window)
		switch {
		case c.want == "" && err == nil:
			t.Errorf("%d/%s accepted as %s", c.limit, c.window, r)
		case c.want != "" && (err != nil || r.String() != c.want):
			t.Errorf("%d/%s: %v, %v; want %s", c.limit, c.window, r, err, c.want)
		}
	}
	rl := func(limit int, window string) *apikey.RateLimit {
		r, err := apikey.ParseRateLimit(limit, window)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, c := range []struct {
		inner, outer *apikey.RateLimit
		want         bool
	}{
		{nil, nil, true}, {rl(5, "1s"), nil, true}, {nil, rl(5, "1s"), false},
		{rl(60, "1m"), rl(1, "1s"), true}, {rl(61, "1m"), rl(1, "1s"), false},
		{rl(1, "1s"), rl(86400, "1d"), true}, {rl(2, "1s"), rl(86400, "1d"), false},
		{rl(1000, "1d"), rl(1, "1m"), true}, // a smaller rate with a larger burst: compared as a rate
	} {
		if got := apikey.RateWithin(c.inner, c.outer); got != c.want {
			t.Errorf("RateWithin(%v, %v) = %v", c.inner, c.outer, got)
		}
	}
}
