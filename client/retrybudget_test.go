package client_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// scripted answers each request with answer(n) (n from 1) and remembers the
// Idempotency-Key and arrival time of each.
type scripted struct {
	*httptest.Server
	mu    sync.Mutex
	keys  []string
	times []time.Time
}

type scriptedAnswer struct {
	status     int
	code       int
	retryAfter string
	details    string // the details object's JSON, {} when empty
}

func newScripted(t *testing.T, answer func(n int) scriptedAnswer) *scripted {
	s := &scripted{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.keys = append(s.keys, r.Header.Get("Idempotency-Key"))
		s.times = append(s.times, time.Now())
		n := len(s.keys)
		s.mu.Unlock()
		a := answer(n)
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		switch {
		case a.status == http.StatusCreated && strings.HasSuffix(r.URL.Path, "/regenerate"):
			writeJSON(w, http.StatusOK, key200)
		case a.status == http.StatusCreated:
			writeJSON(w, http.StatusCreated, key200)
		default:
			if a.details == "" {
				a.details = "{}"
			}
			writeJSON(w, a.status, fmt.Sprintf(`{"message":"m","success":false,"error":{"code":%d,"message":"m","details":%s}}`, a.code, a.details))
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *scripted) seen() ([]string, []time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.keys...), append([]time.Time(nil), s.times...)
}

var keyedCalls = []struct {
	name string
	do   func(c *client.Client, ctx context.Context, opts ...client.RequestOption) error
}{
	{"create", func(c *client.Client, ctx context.Context, opts ...client.RequestOption) error {
		_, err := c.CreateAPIKey(ctx, "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}, opts...)
		return err
	}},
	{"regenerate", func(c *client.Client, ctx context.Context, opts ...client.RequestOption) error {
		_, err := c.RegenerateAPIKey(ctx, "key_a", opts...)
		return err
	}},
}

// A keyed call that never gets a definite answer is retried for its budget,
// then fails with an UnresolvedError holding the key every attempt carried.
func TestGiveUpCarriesTheIdempotencyKey(t *testing.T) {
	const budget = 400 * time.Millisecond
	for _, call := range keyedCalls {
		for _, mine := range []string{"", "intent-42"} {
			t.Run(call.name+"/"+mine, func(t *testing.T) {
				srv := newScripted(t, func(int) scriptedAnswer { return scriptedAnswer{status: 503, code: 50301} })
				c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetryBudget(budget))
				var opts []client.RequestOption
				if mine != "" {
					opts = append(opts, client.WithIdempotencyKey(mine))
				}
				start := time.Now()
				err := call.do(c, context.Background(), opts...)
				elapsed := time.Since(start)
				keys, _ := srv.seen()
				var ue *client.UnresolvedError
				if !errors.As(err, &ue) {
					t.Fatalf("%v (%T), want an *UnresolvedError", err, err)
				}
				if ue.Attempts != len(keys) || ue.Attempts < 2 {
					t.Errorf("Attempts %d, the server saw %d requests (want 2 or more in %v)", ue.Attempts, len(keys), budget)
				}
				for _, k := range keys {
					if k != ue.IdempotencyKey {
						t.Fatalf("the error's key %q, the requests' %q", ue.IdempotencyKey, keys)
					}
				}
				if mine != "" && ue.IdempotencyKey != mine || mine == "" && len(ue.IdempotencyKey) != 32 {
					t.Errorf("key %q", ue.IdempotencyKey)
				}
				var ae *client.Error
				if !errors.As(err, &ae) || ae.StatusCode != 503 || !errors.Is(err, client.ErrServer) {
					t.Errorf("%v: the last answer is not reachable", err)
				}
				if !strings.Contains(err.Error(), fmt.Sprintf("%q", ue.IdempotencyKey)) || !strings.Contains(err.Error(), "outcome unknown") {
					t.Errorf("message %q does not say how to resume", err)
				}
				// The whole budget is used: the last wait is cut, not skipped.
				if elapsed < budget || elapsed > budget+5*time.Second {
					t.Errorf("gave up after %v with a budget of %v", elapsed, budget)
				}
			})
		}
	}
}

// Resuming with the error's key sends that key, and its answer ends the call.
func TestResumeWithTheErrorsKey(t *testing.T) {
	var down = true
	var mu sync.Mutex
	srv := newScripted(t, func(int) scriptedAnswer {
		mu.Lock()
		defer mu.Unlock()
		if down {
			return scriptedAnswer{status: 502}
		}
		return scriptedAnswer{status: 201}
	})
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetryBudget(200*time.Millisecond))
	_, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) {
		t.Fatal(err)
	}
	mu.Lock()
	down = false
	mu.Unlock()
	k, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}},
		client.WithIdempotencyKey(ue.IdempotencyKey))
	if err != nil || k.ID != "key_a" {
		t.Fatalf("resume: %v %v", k, err)
	}
	keys, _ := srv.seen()
	if keys[len(keys)-1] != ue.IdempotencyKey {
		t.Fatalf("the resume sent %q, not %q", keys[len(keys)-1], ue.IdempotencyKey)
	}
}

// Definite answers are never retried, and say what became of the call: no
// UnresolvedError. A 500 is not retried either (the server reports that it
// failed), but an earlier attempt may have been carried out: unresolved.
func TestDefiniteAnswersAreNotRetried(t *testing.T) {
	for _, tc := range []struct {
		a          scriptedAnswer
		unresolved bool
	}{
		{scriptedAnswer{status: 400, code: 40000}, false},
		{scriptedAnswer{status: 401, code: 40101}, false},
		{scriptedAnswer{status: 403, code: 40302}, false},
		{scriptedAnswer{status: 404, code: 40401}, false},
		{scriptedAnswer{status: 409, code: 40900}, false},
		// Completed, but not replayable here: retrying cannot help.
		{scriptedAnswer{status: 409, code: 40904, details: `{"replayable":false,"state":"done"}`}, false},
		{scriptedAnswer{status: 409, code: 40904, retryAfter: "0", details: `{"replayable":false,"state":"done"}`}, false},
		{scriptedAnswer{status: 422, code: 42207}, false},
		{scriptedAnswer{status: 500, code: 50000}, true},
	} {
		for _, call := range keyedCalls {
			t.Run(fmt.Sprintf("%s/%d-%d", call.name, tc.a.status, tc.a.code), func(t *testing.T) {
				srv := newScripted(t, func(int) scriptedAnswer { return tc.a })
				c, _ := client.New(srv.URL+"/v1", "sk_test_x")
				err := call.do(c, context.Background())
				var ae *client.Error
				if !errors.As(err, &ae) || ae.StatusCode != tc.a.status {
					t.Fatalf("%v, want the %d", err, tc.a.status)
				}
				if keys, _ := srv.seen(); len(keys) != 1 {
					t.Errorf("%d requests, want 1", len(keys))
				}
				var ue *client.UnresolvedError
				if errors.As(err, &ue) != tc.unresolved {
					t.Errorf("%v: unresolved %v, want %v", err, !tc.unresolved, tc.unresolved)
				}
			})
		}
	}
}

// A 409 saying that an earlier attempt is still running (the real server's
// 40904 with replayable: true) is retried until the attempt completes, and,
// if it never does within the budget, is unresolved.
func TestStillRunningIsRetried(t *testing.T) {
	running := scriptedAnswer{status: 409, code: 40904, retryAfter: "0", details: `{"replayable":true,"state":"in_progress"}`}
	srv := newScripted(t, func(n int) scriptedAnswer {
		if n <= 3 {
			return running
		}
		return scriptedAnswer{status: 201}
	})
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	if _, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}); err != nil {
		t.Fatal(err)
	}
	if keys, _ := srv.seen(); len(keys) != 4 {
		t.Fatalf("%d requests, want 4", len(keys))
	}

	// Without Retry-After, the body says so.
	running.retryAfter = ""
	srv = newScripted(t, func(int) scriptedAnswer { return running })
	c, _ = client.New(srv.URL+"/v1", "sk_test_x", client.WithRetryBudget(300*time.Millisecond))
	_, err := c.RegenerateAPIKey(context.Background(), "key_a")
	var ue *client.UnresolvedError
	var ae *client.Error
	if !errors.As(err, &ue) || !errors.As(err, &ae) || ae.Code != client.CodeIdempotencyConflict || ue.Attempts < 2 {
		t.Fatalf("%v: want an UnresolvedError after retries of the 40904", err)
	}
}

// Retry-After is honoured: the next attempt waits at least that long, and a
// wait that does not fit in what is left of the budget is not begun.
func TestRetryBudgetHonoursRetryAfter(t *testing.T) {
	srv := newScripted(t, func(n int) scriptedAnswer {
		if n == 1 {
			return scriptedAnswer{status: 503, code: 50301, retryAfter: "1"}
		}
		return scriptedAnswer{status: 201}
	})
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	if _, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}); err != nil {
		t.Fatal(err)
	}
	if _, times := srv.seen(); len(times) != 2 || times[1].Sub(times[0]) < time.Second {
		t.Fatalf("attempts at %v: want the second one Retry-After (1 s) after the first", times)
	}

	srv = newScripted(t, func(int) scriptedAnswer { return scriptedAnswer{status: 503, code: 50301, retryAfter: "10"} })
	c, _ = client.New(srv.URL+"/v1", "sk_test_x", client.WithRetryBudget(time.Second))
	start := time.Now()
	_, err := c.RegenerateAPIKey(context.Background(), "key_a")
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) || ue.Attempts != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("%v after %v: a 10 s Retry-After does not fit in a 1 s budget: want one attempt, unresolved", err, time.Since(start))
	}
}

// The context's deadline ends the retries before the budget does; the
// error still carries the key.
func TestRetryBudgetStopsWithTheContext(t *testing.T) {
	srv := newScripted(t, func(int) scriptedAnswer { return scriptedAnswer{status: 504} })
	c, _ := client.New(srv.URL+"/v1", "sk_test_x") // the default budget, 30 s
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.CreateAPIKey(ctx, "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) || !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, client.ErrTimeout) || ue.IdempotencyKey == "" {
		t.Fatalf("%v: want an UnresolvedError ending in the context's deadline", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the retries outlived the context's deadline by %v", d)
	}
}

// WithRetries alone keeps counting keyed retries; 0 disables them whatever
// the budget; a negative budget is refused.
func TestRetryBudgetAndWithRetries(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []client.Option
		want int
	}{
		{"WithRetries alone counts", []client.Option{client.WithRetries(2, time.Second)}, 3},
		{"WithRetries(0) disables", []client.Option{client.WithRetries(0, 0), client.WithRetryBudget(time.Minute)}, 1},
		{"budget 0 counts the default 2", []client.Option{client.WithRetryBudget(0)}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newScripted(t, func(int) scriptedAnswer { return scriptedAnswer{status: 503, code: 50301, retryAfter: "0"} })
			c, _ := client.New(srv.URL+"/v1", "sk_test_x", tc.opts...)
			err := keyedCalls[0].do(c, context.Background())
			var ue *client.UnresolvedError
			if !errors.As(err, &ue) || ue.Attempts != tc.want {
				t.Fatalf("%v: want an UnresolvedError after %d attempts", err, tc.want)
			}
			if keys, _ := srv.seen(); len(keys) != tc.want {
				t.Fatalf("%d requests, want %d", len(keys), tc.want)
			}
		})
	}
	_, err := client.New("http://127.0.0.1:1/v1", "sk_test_x", client.WithRetryBudget(-time.Second))
	var ae *client.ArgumentError
	if !errors.As(err, &ae) || ae.Name != "WithRetryBudget" {
		t.Fatalf("negative budget: %v", err)
	}
}

// A keyed call none of whose connections opened is retried for its budget
// too (a restarting server refuses connections), but its outcome is known:
// nothing was sent, so its error is the TransportError alone.
func TestNeverSentIsNotUnresolved(t *testing.T) {
	c, _ := client.New(closedURL(t), "sk_test_x", client.WithRetryBudget(300*time.Millisecond))
	start := time.Now()
	_, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
	var ue *client.UnresolvedError
	if errors.As(err, &ue) || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("%v (%T): want the refusal alone", err, err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Fatalf("gave up after %v: refusals are retried for the budget", d)
	}
}
