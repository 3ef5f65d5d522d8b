package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testredis"
)

// needRedis is the shared test Redis (testredis: HSRCPAY_TEST_REDIS_URL),
// skipping (or failing in CI) without it.
func needRedis(t *testing.T) string {
	t.Helper()
	return testredis.URL(t)
}

// metricValue reads one sample from a Prometheus text page ("" when absent).
func metricValue(t *testing.T, url, series string) float64 {
	t.Helper()
	res, body := httpGet(t, url) //nolint:bodyclose // httpGet reads and closes the body
	if res.StatusCode != 200 {
		t.Fatalf("metrics: %d", res.StatusCode)
	}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", series, err)
			}
			return f
		}
	}
	return 0
}

// runBinary runs the server binary with args and env (on top of the test's
// environment), returning its exit code, stdout and stderr.
func runBinary(t *testing.T, env []string, args ...string) (int, []byte, string) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(context.Background(), bin, args...) //nolint:gosec // the server binary this test built
	cmd.Env = append(os.Environ(), env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), out, stderr.String()
	case err != nil:
		t.Fatal(err)
	}
	return 0, out, stderr.String()
}

func parseKeys(t *testing.T, out []byte) map[string]managedKey {
	t.Helper()
	var res struct {
		Keys []managedKey `json:"keys"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	byType := map[string]managedKey{}
	for _, k := range res.Keys {
		byType[k.Type] = k
	}
	return byType
}

// TestRotateManagedReachesRunningReplicaThroughRedis (issue 18, class 7):
// the operator's rotate-managed announces its change as a server does, so
// a running replica on the same PostgreSQL database and Redis refuses the
// old managed secret within 1 s of the command's exit, although its cache
// (TTL 1 minute) held it. Without a reachable Redis the command still
// rotates (exit 0, the new secrets printed) and warns that running servers
// refuse the old secret only within their TTL, within its bounded wait.
func TestRotateManagedReachesRunningReplicaThroughRedis(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	rurl := needRedis(t)
	env := []string{"HSRCPAY_DATABASE_URL=" + storetest.FreshPostgresDB(t), "HSRCPAY_REDIS_URL=" + rurl}
	account := fmt.Sprintf("acct_rot%d", time.Now().UnixNano())
	code, out, stderr := runBinary(t, env, "bootstrap", "--account", account, "--mode", "live")
	if code != 0 {
		t.Fatalf("bootstrap: exit %d: %s", code, stderr)
	}
	old := parseKeys(t, out)["SECRET"]

	maddr := freeAddr(t)
	// The budgets out of the way: the test polls with the old secret.
	_, base, _ := startServer(t, append(env, "HSRCPAY_CREDENTIAL_CACHE_TTL=1m", "HSRCPAY_METRICS_ADDR="+maddr,
		"HSRCPAY_RATE_LIMIT_LIVE=100000", "HSRCPAY_RATE_LIMIT_ACCOUNT_LIVE=100000", "HSRCPAY_AUTH_FAILURE_LIMIT=100000")...)
	metrics := "http://" + maddr + "/metrics"
	for start := time.Now(); metricValue(t, metrics, "hsrcpay_credential_cache_subscribed") != 1; time.Sleep(20 * time.Millisecond) {
		if time.Since(start) > 10*time.Second {
			t.Fatal("the replica's credential cache did not start serving")
		}
	}
	c, err := client.New(base, old.Secret, client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	works := func() bool {
		_, err := c.GetAPIKey(context.Background(), old.ID)
		if err != nil && !errors.Is(err, client.ErrUnauthorized) {
			t.Fatal(err)
		}
		return err == nil
	}
	for range 3 {
		if !works() {
			t.Fatal("the managed secret is refused before the rotation")
		}
	}
	if hits := metricValue(t, metrics, `hsrcpay_credential_cache_lookups_total{result="hit"}`); hits < 2 {
		t.Fatalf("%v cache hits: the replica's cache does not hold the secret, this test would prove nothing", hits)
	}

	code, out, stderr = runBinary(t, env, "rotate-managed", "--account", account, "--mode", "live")
	exited := time.Now()
	if code != 0 || stderr != "" {
		t.Fatalf("rotate-managed: exit %d, stderr %q", code, stderr)
	}
	for works() {
		if time.Since(exited) > time.Second {
			t.Fatalf("the running replica still accepts the old managed secret %v after rotate-managed exited (bound 1s)", time.Since(exited).Round(time.Millisecond))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("old managed secret refused by the running replica %v after rotate-managed exited", time.Since(exited).Round(100*time.Microsecond))
	fresh, _ := client.New(base, parseKeys(t, out)["SECRET"].Secret, client.WithRetries(0, 0))
	if _, err := fresh.GetAPIKey(context.Background(), old.ID); err != nil {
		t.Fatalf("the new managed secret: %v", err)
	}

	t.Run("Redis unreachable", func(t *testing.T) {
		down := []string{env[0], "HSRCPAY_REDIS_URL=redis://" + freeAddr(t) + "/0"}
		start := time.Now()
		code, out, stderr := runBinary(t, down, "rotate-managed", "--account", account, "--mode", "live")
		took := time.Since(start)
		if code != 0 || parseKeys(t, out)["SECRET"].Secret == "" {
			t.Fatalf("exit %d, output %s, stderr %q", code, out, stderr)
		}
		if !strings.Contains(stderr, "could not be announced through Redis") || !strings.Contains(stderr, "HSRCPAY_CREDENTIAL_CACHE_TTL") {
			t.Fatalf("no warning that running servers keep the old secret for their TTL: %q", stderr)
		}
		if took > announceWait+5*time.Second { // the bounded wait, plus starting a process on a busy machine
			t.Fatalf("rotate-managed with Redis down took %v", took)
		}
		t.Logf("with Redis down: exit 0 after %v, warned", took.Round(time.Millisecond))
	})
}
