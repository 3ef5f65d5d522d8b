package client_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// These cover client branches a well-behaved server never takes (200 on
// create, a proxy's HTML error, network faults); the behaviour against the
// real server is tested in server/ and in e2e_test.go.

const key200 = `{"message":"success","success":true,"data":{"object":"api_key","id":"key_a","account_id":"acct","name":"n","type":"SECRET","key":"sk_test_x","last_used_ip":null,"metadata":{},"permissions":{},"status":"ACTIVE","last_used_at":null,"expires_at":null,"managed":false,"deleted":false,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","previous_key_expires_at":null}}`

func TestCreateAccepts200(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(key200)) // the client's checks below say whether it arrived
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	k, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
	if err != nil || k.ID != "key_a" {
		t.Fatalf("%v %v", k, err)
	}
}

func TestNonEnvelopeErrorIsTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusBadGateway)
		_, _ = w.Write([]byte("<html>bad gateway</html>")) // the client's checks below say whether it arrived
	}))
	defer srv.Close()
	// A keyed request retries 502s for its budget, then says its outcome is
	// unknown; the answer's error stays reachable.
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetryBudget(200*time.Millisecond))
	_, err := c.RegenerateAPIKey(context.Background(), "key_a")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.StatusCode != 502 || ae.Code != 0 || !errors.Is(err, client.ErrServer) {
		t.Fatalf("%v", err)
	}
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) || ue.Attempts < 2 {
		t.Fatalf("%v: want an UnresolvedError after retries", err)
	}
}

func TestRefusedConnectionIsRetried(t *testing.T) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil { // nothing listens: connections are refused
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(key200)) // the client's checks below say whether it arrived
	})}
	go func() {
		time.Sleep(150 * time.Millisecond)
		l, err := lc.Listen(ctx, "tcp", addr)
		if err == nil {
			_ = srv.Serve(l) // http.ErrServerClosed once the test ends
		}
	}()
	defer func() { _ = srv.Close() }()
	c, _ := client.New("http://"+addr+"/v1", "sk_test_x", client.WithRetries(5, time.Second))
	if _, err := c.RegenerateAPIKey(context.Background(), "key_a"); err != nil {
		t.Fatalf("refused connections should be retried: %v", err)
	}
}

// A create without an Idempotency-Key whose outcome is unknown is never
// repeated (with one, the default, it is: TestIdempotentRequestsAreRetriedAfterATimeout).
func TestTimeoutIsNotRetried(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		time.Sleep(300 * time.Millisecond)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x",
		client.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}), client.WithRetries(3, time.Second))
	if _, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}, client.WithoutIdempotencyKey()); !errors.Is(err, client.ErrTimeout) {
		t.Fatalf("want a timeout: %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("a create whose outcome is unknown was sent %d times", n)
	}
}

func TestContextCancellation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "10")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(3, time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.RegenerateAPIKey(ctx, "key_a")
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrTimeout) || time.Since(start) > 2*time.Second {
		t.Fatalf("waiting out Retry-After must stop with the context: %v after %v", err, time.Since(start))
	}
}

func TestNewRejectsBadInput(t *testing.T) {
	if _, err := client.New("localhost:8080", "sk_test_x"); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("base URL without scheme: %v", err)
	}
	if _, err := client.New("http://localhost:8080/v1", ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Fatalf("empty token: %v", err)
	}
}
