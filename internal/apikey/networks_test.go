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
