package main

import (
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/client"
)

// TestKeysCredits: --credits and --refill on create and update,
// --add-credits on update, --cost on verify; the output shows the credits
// and what a verify left.
func TestKeysCredits(t *testing.T) {
	_, m, env := setup(t)
	var k client.APIKey
	decodeStrict(t, ok(t, env, "keys", "create", "--account", account, "--name", "metered", "--json",
		"--credits", "5", "--refill", "100/monthly@15"), &k)
	if k.Credits == nil || k.Credits.Remaining != 5 || k.Credits.Refill == nil || k.Credits.Refill.Amount != 100 ||
		k.Credits.Refill.Interval != client.RefillMonthly || k.Credits.Refill.Day == nil || *k.Credits.Refill.Day != 15 {
		t.Fatalf("create --credits 5 --refill 100/monthly@15: %+v", k.Credits)
	}
	contains(t, "get", ok(t, env, "keys", "get", k.ID), "credits:", "5 left, refill 100 monthly on day 15")
	contains(t, "a key without credits", ok(t, env, "keys", "get", m.PublishableID), "credits:", "none")

	out := ok(t, env, "keys", "verify", "--cost", "3", k.Key)
	contains(t, "verify --cost 3", out, "VALID", "credits left:", "2")
	code, out, errOut := cli(t, env, "keys", "verify", "--cost", "3", "--json", k.Key)
	wantCode(t, code, exitError, out, errOut)
	var j verifyJSON
	decodeStrict(t, out, &j)
	if j.Valid || j.Code != "USAGE_EXCEEDED" || j.CreditsRemaining == nil || *j.CreditsRemaining != 2 {
		t.Fatalf("verify --cost 3 with 2 left: %+v", j)
	}
	code, out, errOut = cli(t, env, "keys", "verify", "--cost", "3", k.Key)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "usage exceeded", out, "USAGE_EXCEEDED: the key has fewer credits left than --cost", "credits left:", "2")

	contains(t, "add", ok(t, env, "keys", "update", "--add-credits", "40", k.ID), "credits:", "42 left, refill 100 monthly on day 15")
	contains(t, "set", ok(t, env, "keys", "update", "--credits", "7", "--refill", "7/daily", k.ID), "credits:", "7 left, refill 7 daily")
	contains(t, "set without refill", ok(t, env, "keys", "update", "--credits", "1000", k.ID), "credits:", "1000 left")
	contains(t, "verify --cost 0", ok(t, env, "keys", "verify", "--cost", "0", k.Key), "VALID", "credits left:", "1000")

	for _, args := range [][]string{
		{"keys", "create", "--account", account, "--name", "x", "--credits", "many"},
		{"keys", "create", "--account", account, "--name", "x", "--credits", "1", "--refill", "5/weekly"},
		{"keys", "create", "--account", account, "--name", "x", "--credits", "1", "--refill", "5/daily@3"},
		{"keys", "create", "--account", account, "--name", "x", "--refill", "5/daily"},
		{"keys", "update", "--credits", "1", "--add-credits", "2", k.ID},
		{"keys", "update", "--refill", "5/daily", k.ID},
		{"keys", "verify", "--cost", "1000001", k.Key},
		{"keys", "verify", "--cost", "-1", k.Key},
	} {
		code, out, errOut := cli(t, env, args...)
		wantCode(t, code, exitUsage, out, errOut)
		if strings.Contains(errOut, k.Key) {
			t.Fatalf("%v: the key in the usage error", args)
		}
	}
	// What the API refuses keeps its code: adding to a key without credits
	// (42208), credits on the root (42205).
	code, out, errOut = cli(t, env, "keys", "update", "--add-credits", "1", m.PublishableID)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "add to a key without credits", errOut, "42208")
	code, out, errOut = cli(t, env, "keys", "update", "--credits", "1", m.SecretID)
	wantCode(t, code, exitError, out, errOut)
	contains(t, "credits on the root", errOut, "42205")
}
