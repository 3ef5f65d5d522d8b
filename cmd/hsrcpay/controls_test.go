package main

import (
	"slices"
	"testing"

	"github.com/hsrcpay/apikeys/client"
)

// TestKeysNetworksAndRateLimit: --allow and --rate-limit on create and
// update, --allow-any on update, --client-ip on verify; the output shows a
// key's networks (canonical, as the server stores them) and its own limit.
func TestKeysNetworksAndRateLimit(t *testing.T) {
	_, m, env := setup(t)
	var k client.APIKey
	decodeStrict(t, ok(t, env, "keys", "create", "--account", account, "--name", "restricted", "--json",
		"--allow", "10.1.2.3/8", "--allow", "2001:db8::1", "--rate-limit", "100/1m"), &k)
	if k.AllowedNetworks == nil || !slices.Equal(*k.AllowedNetworks, []string{"10.0.0.0/8", "2001:db8::1/128"}) {
		t.Fatalf("create --allow 10.1.2.3/8 --allow 2001:db8::1: %v", k.AllowedNetworks)
	}
	if k.RateLimit == nil || k.RateLimit.Limit != 100 || k.RateLimit.Window != "1m" {
		t.Fatalf("create --rate-limit 100/1m: %+v", k.RateLimit)
	}
	contains(t, "get", ok(t, env, "keys", "get", k.ID), "networks:", "10.0.0.0/8 2001:db8::1/128", "rate limit:", "100/1m")
	contains(t, "an unrestricted key", ok(t, env, "keys", "get", m.PublishableID), "networks:", "any", "rate limit:", "mode default")

	contains(t, "verify from inside", ok(t, env, "keys", "verify", "--client-ip", "10.9.8.7", k.Key), "VALID")
	for _, from := range [][]string{{"--client-ip", "192.0.2.1"}, {}} {
		code, out, errOut := cli(t, env, append(append([]string{"keys", "verify"}, from...), k.Key)...)
		wantCode(t, code, exitError, out, errOut)
		contains(t, "verify from outside or nowhere", out, "NETWORK_NOT_ALLOWED")
	}

	contains(t, "narrow", ok(t, env, "keys", "update", "--allow", "10.1.0.0/16", "--rate-limit", "5/1s", k.ID),
		"networks:", "10.1.0.0/16", "rate limit:", "5/1s")
	contains(t, "lift", ok(t, env, "keys", "update", "--allow-any", k.ID), "networks:", "any")
	contains(t, "verify anywhere", ok(t, env, "keys", "verify", k.Key), "VALID")

	for _, args := range [][]string{
		{"keys", "create", "--account", account, "--name", "x", "--allow", "10.0.0.0/33"},
		{"keys", "create", "--account", account, "--name", "x", "--allow", "example.com"},
		{"keys", "create", "--account", account, "--name", "x", "--rate-limit", "100"},
		{"keys", "create", "--account", account, "--name", "x", "--rate-limit", "0/1m"},
		{"keys", "create", "--account", account, "--name", "x", "--rate-limit", "10/1w"},
		{"keys", "update", "--allow", "10.0.0.0/8", "--allow-any", k.ID},
		{"keys", "verify", "--client-ip", "not-an-ip", k.Key},
	} {
		code, out, errOut := cli(t, env, args...)
		wantCode(t, code, exitUsage, out, errOut)
	}
	// What the API refuses keeps its code: the root restricted to networks.
	code, out, errOut := cli(t, env, "keys", "update", "--allow", "10.0.0.0/8", m.SecretID)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "the root restricted", errOut, "42205")
}
