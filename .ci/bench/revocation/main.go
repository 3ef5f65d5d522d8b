// Command revocation measures how long a revoked secret keeps working on
// another replica: the credential cache's bound in practice (README,
// "Credential cache"). Built by the benchmark scripts like baseline
// (`go build -o X .ci/bench/revocation/main.go`); nothing else imports it.
//
// Against two replicas A and B sharing one store (and Redis), N times:
// create a key through A (or, -mode regenerate, rotate the managed
// publishable key), use it on B until B's cache holds it, revoke it through
// A (delete, disable, or regenerate without grace), note when A answered,
// then ask B every millisecond until it refuses the secret (401). It prints
// one line:
//
//	REVOCATION n=200 p50_ms=1.02 p99_ms=3.10 max_ms=4.87
//
// The replicas need budgets that a few hundred requests per second do not
// exhaust, failed authentications included (.ci/bench/load.sh raises every
// HSRCPAY_RATE_LIMIT_* and HSRCPAY_AUTH_FAILURE_LIMIT); a 429 stops the run
// with that hint. Only net/http and encoding/json: it speaks the API as any
// client does.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"
)

type options struct {
	a, b, admin, account, mode, metricsB string
	n                                    int
	timeout                              time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.a, "a", "", "replica A's base URL, e.g. http://127.0.0.1:8081/v1 (/v1 is added when missing); changes go through it")
	flag.StringVar(&o.b, "b", "", "replica B's base URL; the revoked secret is polled there")
	flag.StringVar(&o.admin, "key", os.Getenv("HSRCPAY_API_KEY"), "the account's managed secret key (default $HSRCPAY_API_KEY)")
	flag.StringVar(&o.account, "account", "acct_demo", "account id")
	flag.IntVar(&o.n, "n", 200, "samples")
	flag.StringVar(&o.mode, "mode", "delete", "how to revoke: delete (a custom key), disable (a custom key), regenerate (the managed publishable key, no grace)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "give up on a sample after this long")
	flag.StringVar(&o.metricsB, "metrics-b", "", "optional: replica B's metrics URL (http://host:port/metrics), to report its cache hits")
	flag.Parse()
	if o.a == "" || o.b == "" || o.admin == "" || o.n <= 0 {
		flag.Usage()
		os.Exit(2)
	}
	if o.mode != "delete" && o.mode != "disable" && o.mode != "regenerate" {
		fmt.Fprintln(os.Stderr, "revocation: -mode must be delete, disable or regenerate")
		os.Exit(2)
	}
	o.a, o.b = apiBase(o.a), apiBase(o.b)
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "revocation:", err)
		os.Exit(1)
	}
}

func apiBase(u string) string {
	u = strings.TrimRight(u, "/")
	if !strings.HasSuffix(u, "/v1") {
		u += "/v1"
	}
	return u
}

var httpc = &http.Client{Timeout: 10 * time.Second}

// call sends one request and decodes the envelope's data into out (when
// non-nil and the answer is 2xx); it returns the status.
func call(method, url, token string, body any, out any) (int, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := httpc.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = res.Body.Close() }() // read to the end below; nothing to report
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return res.StatusCode, err
	}
	if res.StatusCode == http.StatusTooManyRequests {
		return res.StatusCode, errors.New("429 from " + url + ": raise the replicas' HSRCPAY_RATE_LIMIT_* and HSRCPAY_AUTH_FAILURE_LIMIT")
	}
	if out != nil && res.StatusCode < 300 {
		var env struct {
			Data json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return res.StatusCode, err
		}
		return res.StatusCode, json.Unmarshal(env.Data, out)
	}
	return res.StatusCode, nil
}

type apiKey struct {
	ID  string `json:"id"`
	Key string `json:"key"`
}

// works asks B with secret for a key's record: any answer but 401 means
// the secret authenticated (a publishable key gets 403).
func works(o options, secret, id string) (bool, error) {
	status, err := call("GET", o.b+"/api-keys/"+id, secret, nil, nil)
	if err != nil {
		return false, err
	}
	return status != http.StatusUnauthorized, nil
}

// target is one secret to revoke and how.
type target struct{ id, secret string }

func run(o options) error {
	var pub target // -mode regenerate: the managed publishable key
	if o.mode == "regenerate" {
		var page struct {
			Data []struct {
				ID      string `json:"id"`
				Type    string `json:"type"`
				Managed bool   `json:"managed"`
			} `json:"data"`
		}
		if _, err := call("GET", o.a+"/api-keys/?account_id="+o.account+"&managed=true&limit=100", o.admin, nil, &page); err != nil {
			return err
		}
		for _, k := range page.Data {
			if k.Managed && k.Type == "PUBLISHABLE" {
				pub.id = k.ID
			}
		}
		if pub.id == "" {
			return errors.New("no managed publishable key on " + o.account)
		}
		var k apiKey // its current secret is unknown: rotate once to learn it
		if status, err := call("POST", o.a+"/api-keys/"+pub.id+"/regenerate", o.admin, nil, &k); err != nil {
			return fmt.Errorf("regenerate %s: %w", pub.id, err)
		} else if k.Key == "" {
			return fmt.Errorf("regenerate %s: status %d", pub.id, status)
		}
		pub.secret = k.Key
	}
	hitsBefore := cacheHits(o.metricsB)
	nonce := time.Now().UnixNano()
	delays := make([]time.Duration, 0, o.n)
	immediate := 0
	for i := 0; i < o.n; i++ {
		t := pub
		if o.mode != "regenerate" {
			var k apiKey
			status, err := call("POST", o.a+"/api-keys/?account_id="+o.account, o.admin,
				map[string]any{"name": fmt.Sprintf("revocation %d %d", nonce, i), "permissions": map[string][]string{"account:api:key": {"read"}}}, &k)
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			if status != http.StatusCreated {
				return fmt.Errorf("create: status %d", status)
			}
			t = target{k.ID, k.Key}
		}
		// The first use on B reads the store and fills its cache; the second is served from it.
		for j := 0; j < 2; j++ {
			ok, err := works(o, t.secret, t.id)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("sample %d: B refuses a working secret (do A and B share one store?)", i)
			}
		}
		var status int
		var err error
		switch o.mode {
		case "delete":
			status, err = call("DELETE", o.a+"/api-keys/"+t.id, o.admin, nil, nil)
		case "disable":
			status, err = call("PATCH", o.a+"/api-keys/"+t.id, o.admin, map[string]string{"status": "INACTIVE"}, nil)
		case "regenerate":
			var k apiKey
			status, err = call("POST", o.a+"/api-keys/"+t.id+"/regenerate", o.admin, nil, &k)
			pub.secret = k.Key
		}
		answered := time.Now() // A's response: the change has committed
		if err != nil {
			return fmt.Errorf("%s: %w", o.mode, err)
		}
		if status != http.StatusOK {
			return fmt.Errorf("%s: status %d", o.mode, status)
		}
		for polls := 0; ; polls++ {
			ok, err := works(o, t.secret, t.id)
			if err != nil {
				return err
			}
			if !ok {
				if polls == 0 {
					immediate++
				}
				break
			}
			if time.Since(answered) > o.timeout {
				return fmt.Errorf("sample %d: B still accepts the revoked secret after %v", i, o.timeout)
			}
			time.Sleep(time.Millisecond)
		}
		delays = append(delays, time.Since(answered))
	}
	slices.Sort(delays)
	q := func(p float64) float64 {
		i := int(math.Ceil(p*float64(len(delays)))) - 1
		return float64(delays[max(i, 0)].Microseconds()) / 1000
	}
	fmt.Fprintf(os.Stderr, "revocation: mode %s; %d of %d samples refused on B's first poll after A answered", o.mode, immediate, len(delays))
	if hitsBefore >= 0 {
		fmt.Fprintf(os.Stderr, "; B's cache hits during the run: %.0f", cacheHits(o.metricsB)-hitsBefore)
	}
	fmt.Fprintln(os.Stderr)
	fmt.Printf("REVOCATION n=%d p50_ms=%.2f p99_ms=%.2f max_ms=%.2f\n", len(delays), q(0.50), q(0.99), q(1))
	return nil
}

// cacheHits reads hsrcpay_credential_cache_lookups_total{result="hit"}
// from a metrics URL; -1 without one.
func cacheHits(url string) float64 {
	if url == "" {
		return -1
	}
	req, err := http.NewRequestWithContext(context.Background(), "GET", url, nil)
	if err != nil {
		return -1
	}
	res, err := httpc.Do(req)
	if err != nil {
		return -1
	}
	defer func() { _ = res.Body.Close() }() // read to the end below; nothing to report
	raw, _ := io.ReadAll(res.Body)          // a short read shows as a missing series: 0
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, `hsrcpay_credential_cache_lookups_total{result="hit"} `); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return 0
}
