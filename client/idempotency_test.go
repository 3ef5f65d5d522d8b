package client_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// keysSeen answers with status for the first fail requests, then with a
// key, and remembers each request's Idempotency-Key ("-" for none).
func keysSeen(fail int, status int) (*httptest.Server, func() []string) {
	var (
		mu   sync.Mutex
		keys []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		k := r.Header.Get("Idempotency-Key")
		if len(r.Header.Values("Idempotency-Key")) == 0 {
			k = "-"
		}
		keys = append(keys, k)
		n := len(keys)
		mu.Unlock()
		if n <= fail {
			if status == http.StatusConflict {
				w.Header().Set("Retry-After", "0")
			}
			writeJSON(w, status, `{"message":"x","success":false,"error":{"code":50000,"message":"x","details":{}}}`)
			return
		}
		ok := http.StatusCreated
		if strings.HasSuffix(r.URL.Path, "/regenerate") {
			ok = http.StatusOK
		}
		writeJSON(w, ok, key200)
	}))
	return srv, func() []string { mu.Lock(); defer mu.Unlock(); return append([]string(nil), keys...) }
}

func TestIdempotencyKeySentAndKeptAcrossRetries(t *testing.T) {
	for _, status := range []int{http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusConflict} {
		srv, seen := keysSeen(1, status)
		c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(2, time.Second))
		if _, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}); err != nil {
			t.Fatalf("%d then 201: %v", status, err)
		}
		keys := seen()
		if len(keys) != 2 || keys[0] != keys[1] || len(keys[0]) != 32 {
			t.Fatalf("after %d: keys sent %q; want the same random 128-bit key twice", status, keys)
		}
		srv.Close()
	}
	// Two calls: two keys.
	srv, seen := keysSeen(0, 0)
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	for range 2 {
		if _, err := c.RegenerateAPIKey(context.Background(), "key_a"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegenerateAPIKey(context.Background(), "key_a", client.WithIdempotencyKey("mine")); err != nil {
		t.Fatal(err)
	}
	if keys := seen(); len(keys) != 3 || keys[0] == keys[1] || keys[2] != "mine" {
		t.Fatalf("keys sent %q", keys)
	}
}

func TestWithoutIdempotencyKeyIsNotRetried(t *testing.T) {
	srv, seen := keysSeen(1, http.StatusServiceUnavailable)
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(2, time.Second))
	_, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}, client.WithoutIdempotencyKey())
	if err == nil {
		t.Fatal("a 503 without a key was retried")
	}
	if keys := seen(); len(keys) != 1 || keys[0] != "-" {
		t.Fatalf("keys sent %q; want one request without a key", keys)
	}
}

func TestIdempotencyKeyArguments(t *testing.T) {
	c, _ := client.New("http://127.0.0.1:1/v1", "sk_test_x")
	var ae *client.ArgumentError
	for _, k := range []string{"", "tab\t", string(make([]byte, 256)), "ünï"} {
		if _, err := c.RegenerateAPIKey(context.Background(), "key_a", client.WithIdempotencyKey(k)); !errors.As(err, &ae) {
			t.Errorf("WithIdempotencyKey(%q): %v; want an ArgumentError", k, err)
		}
	}
	if _, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n"}, client.WithGracePeriod(time.Hour)); !errors.As(err, &ae) {
		t.Errorf("WithGracePeriod on create: %v; want an ArgumentError", err)
	}
}
