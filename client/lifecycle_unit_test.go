package client_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// These drive the lifecycle methods against a fake server, for what the
// real one never does (inconsistent pages, timeouts, broken connections) and
// to pin what goes on the wire. The end-to-end behaviour is in e2e_test.go.

func viewJSON(id string) string {
	return fmt.Sprintf(`{"object":"api_key","id":%q,"account_id":"acct","name":"n %s","type":"SECRET","key_hint":"sk_test_…abcd","last_used_ip":null,"metadata":{},"permissions":{},"status":"ACTIVE","last_used_at":null,"expires_at":null,"managed":false,"deleted":false,"created_at":"2026-01-01T00:00:00Z","updated_at":"2026-01-01T00:00:00Z","previous_key_expires_at":null,"created_by":{"kind":"key","id":"key_creator","request_id":"req_1"}}`, id, id)
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body) // the client under test reports a short answer
}

func TestLifecycleRequestsOnTheWire(t *testing.T) {
	type seen struct{ method, path, query, body string }
	var got []seen
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		got = append(got, seen{r.Method, r.URL.Path, r.URL.RawQuery, string(b)})
		writeJSON(w, 200, `{"message":"success","success":true,"data":`+viewJSON("key_a")+`}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	ctx := context.Background()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	calls := []func() (*client.APIKeyView, error){
		func() (*client.APIKeyView, error) { return c.GetAPIKey(ctx, "key_a") },
		func() (*client.APIKeyView, error) { return c.UpdateAPIKey(ctx, "key_a", client.Disable()) },
		func() (*client.APIKeyView, error) { return c.UpdateAPIKey(ctx, "key_a", client.Enable()) },
		func() (*client.APIKeyView, error) { return c.UpdateAPIKey(ctx, "key_a", client.Rename("new")) },
		func() (*client.APIKeyView, error) {
			return c.UpdateAPIKey(ctx, "key_a", client.UpdateAPIKeyRequest{Metadata: &client.Metadata{}, ExpiresAt: client.Ptr(exp)})
		},
		func() (*client.APIKeyView, error) { return c.DeleteAPIKey(ctx, "key_a") },
	}
	for i, call := range calls {
		k, err := call()
		if err != nil || k.ID != "key_a" || k.KeyHint == nil || *k.KeyHint != "sk_test_…abcd" {
			t.Fatalf("call %d: %+v %v", i, k, err)
		}
	}
	want := []seen{
		{"GET", "/v1/api-keys/key_a", "", ""},
		{"PATCH", "/v1/api-keys/key_a", "", `{"status":"INACTIVE"}`},
		{"PATCH", "/v1/api-keys/key_a", "", `{"status":"ACTIVE"}`},
		{"PATCH", "/v1/api-keys/key_a", "", `{"name":"new"}`},
		{"PATCH", "/v1/api-keys/key_a", "", `{"metadata":{},"expires_at":"2030-01-02T03:04:05Z"}`},
		{"DELETE", "/v1/api-keys/key_a", "", ""},
	}
	if len(got) != len(want) {
		t.Fatalf("requests %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("request %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	// An empty id would address the list route: refused before sending.
	n := len(got)
	if _, err := c.GetAPIKey(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("GetAPIKey with an empty id: %v", err)
	}
	if _, err := c.UpdateAPIKey(ctx, "", client.Disable()); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("UpdateAPIKey with an empty id: %v", err)
	}
	if _, err := c.DeleteAPIKey(ctx, ""); !errors.Is(err, client.ErrInvalidArgument) {
		t.Errorf("DeleteAPIKey with an empty id: %v", err)
	}
	if len(got) != n {
		t.Errorf("requests sent for an empty id: %+v", got[n:])
	}
}

// fakePages serves n keys (or audit events) a page at a time with integer
// cursors; failAt makes the request for that page answer 500.
func fakePages(t *testing.T, n int, failAt int, queries *[]string) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*queries = append(*queries, r.URL.RawQuery)
		q := r.URL.Query()
		limit := 20
		if l := q.Get("limit"); l != "" {
			limit, _ = strconv.Atoi(l)
		}
		start := 0
		if c := q.Get("cursor"); c != "" {
			start, _ = strconv.Atoi(c[1:])
		}
		if failAt >= 0 && start/limit == failAt {
			writeJSON(w, 500, `{"message":"boom","success":false,"error":{"code":50000,"message":"Internal error","details":{"request_id":"req_fail"}}}`)
			return
		}
		end := min(start+limit, n)
		items := "["
		for i := start; i < end; i++ {
			if i > start {
				items += ","
			}
			items += viewJSON(fmt.Sprintf("key_%02d", i))
		}
		items += "]"
		next := "null"
		if end < n {
			next = fmt.Sprintf(`"c%d"`, end)
		}
		writeJSON(w, 200, fmt.Sprintf(`{"message":"success","success":true,"data":{"object":"list","data":%s,"has_more":%v,"next_cursor":%s}}`, items, end < n, next))
	}))
}

func sortedQuery(q string) string {
	v, _ := url.ParseQuery(q)
	return v.Encode()
}

func TestListAPIKeysWalksEveryPageOnce(t *testing.T) {
	var queries []string
	srv := fakePages(t, 23, -1, &queries)
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	opts := client.ListAPIKeysOptions{Limit: 5, Status: client.StatusActive, Type: client.TypeSecret,
		Managed: client.Ptr(false), CreatedBy: "key_creator", Deleted: true}
	var ids []string
	for k, err := range c.ListAPIKeys(context.Background(), "acct", opts) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, k.ID)
	}
	if len(ids) != 23 {
		t.Fatalf("%d keys: %v", len(ids), ids)
	}
	for i, id := range ids {
		if id != fmt.Sprintf("key_%02d", i) {
			t.Fatalf("key %d is %s", i, id)
		}
	}
	if len(queries) != 5 {
		t.Fatalf("%d requests: %v", len(queries), queries)
	}
	if want := "account_id=acct&created_by=key_creator&deleted=true&limit=5&managed=false&status=ACTIVE&type=SECRET"; sortedQuery(queries[0]) != want {
		t.Errorf("first query %q, want %q", queries[0], want)
	}
	if want := "account_id=acct&created_by=key_creator&cursor=c20&deleted=true&limit=5&managed=false&status=ACTIVE&type=SECRET"; sortedQuery(queries[4]) != want {
		t.Errorf("last query %q, want %q", queries[4], want)
	}

	// Breaking out of the loop stops fetching.
	queries = nil
	n := 0
	for _, err := range c.ListAPIKeys(context.Background(), "acct", client.ListAPIKeysOptions{Limit: 5}) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 7 {
			break
		}
	}
	if len(queries) != 2 {
		t.Errorf("break after 7 keys sent %d requests", len(queries))
	}

	// The page method and a starting cursor.
	page, err := c.ListAPIKeysPage(context.Background(), "acct", client.ListAPIKeysOptions{Limit: 10, Cursor: "c20"})
	if err != nil || len(page.Data) != 3 || page.HasMore || page.NextCursor != nil {
		t.Fatalf("last page: %+v %v", page, err)
	}
	all, err := client.Collect(c.ListAPIKeys(context.Background(), "acct", client.ListAPIKeysOptions{Cursor: "c10"}))
	if err != nil || len(all) != 13 || all[0].ID != "key_10" {
		t.Fatalf("from c10: %d keys, %v", len(all), err)
	}
}

func TestListAPIKeysStopsOnTheFirstError(t *testing.T) {
	var queries []string
	srv := fakePages(t, 23, 2, &queries) // the third page fails
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(0, 0))
	keys, errs := 0, 0
	for _, err := range c.ListAPIKeys(context.Background(), "acct", client.ListAPIKeysOptions{Limit: 5}) {
		if err != nil {
			errs++
			var ae *client.Error
			if !errors.As(err, &ae) || !errors.Is(err, client.ErrServer) || ae.RequestID != "req_fail" {
				t.Errorf("error %v", err)
			}
			continue // the iterator must stop by itself
		}
		keys++
	}
	if keys != 10 || errs != 1 || len(queries) != 3 {
		t.Fatalf("%d keys, %d errors, %d requests", keys, errs, len(queries))
	}
	got, err := client.Collect(c.ListAPIKeys(context.Background(), "acct", client.ListAPIKeysOptions{Limit: 5}))
	if len(got) != 10 || !errors.Is(err, client.ErrServer) {
		t.Fatalf("Collect: %d, %v", len(got), err)
	}
}

func TestInconsistentPagesEndTheIteration(t *testing.T) {
	for name, body := range map[string]string{
		"has_more without cursor": `{"object":"list","data":[],"has_more":true,"next_cursor":null}`,
		"same cursor again":       `{"object":"list","data":[],"has_more":true,"next_cursor":"c1"}`,
	} {
		t.Run(name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) > 10 {
					t.Error("still fetching")
				}
				writeJSON(w, 200, `{"message":"success","success":true,"data":`+body+`}`)
			}))
			defer srv.Close()
			c, _ := client.New(srv.URL+"/v1", "sk_test_x")
			_, err := client.Collect(c.ListAuditEvents(context.Background(), "acct", client.ListAuditEventsOptions{}))
			if !errors.Is(err, client.ErrBadPage) {
				t.Fatalf("%v", err)
			}
		})
	}
}

func TestListAuditEventsQuery(t *testing.T) {
	var query string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		query = r.URL.Path + "?" + sortedQuery(r.URL.RawQuery)
		writeJSON(w, 200, `{"message":"success","success":true,"data":{"object":"list","data":[],"has_more":false,"next_cursor":null}}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	page, err := c.ListAuditEventsPage(context.Background(), "acct", client.ListAuditEventsOptions{KeyID: "key_a", Action: client.AuditDisable, Limit: 7})
	if err != nil || len(page.Data) != 0 {
		t.Fatal(page, err)
	}
	if want := "/v1/audit-events?account_id=acct&action=disable&key_id=key_a&limit=7"; query != want {
		t.Fatalf("%s, want %s", query, want)
	}
}

// slowThenFast answers the first request too late for the client's timeout
// and the later ones at once.
func slowThenFast(calls *atomic.Int32) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			time.Sleep(300 * time.Millisecond)
		}
		writeJSON(w, 200, `{"message":"success","success":true,"data":`+viewJSON("key_a")+`}`)
	}))
}

func TestIdempotentRequestsAreRetriedAfterATimeout(t *testing.T) {
	for _, tc := range []struct {
		name  string
		call  func(*client.Client) error
		calls int32
	}{
		{"GET", func(c *client.Client) error { _, err := c.GetAPIKey(context.Background(), "key_a"); return err }, 2},
		{"DELETE", func(c *client.Client) error { _, err := c.DeleteAPIKey(context.Background(), "key_a"); return err }, 2},
		{"PATCH", func(c *client.Client) error {
			_, err := c.UpdateAPIKey(context.Background(), "key_a", client.Disable())
			return err
		}, 1},
		// A POST, but one that changes nothing.
		{"POST verify", func(c *client.Client) error { _, err := c.VerifyKey(context.Background(), "sk_test_x"); return err }, 2},
		{"POST create without Idempotency-Key", func(c *client.Client) error {
			_, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}}, client.WithoutIdempotencyKey())
			return err
		}, 1},
		{"POST regenerate without Idempotency-Key", func(c *client.Client) error {
			_, err := c.RegenerateAPIKey(context.Background(), "key_a", client.WithoutIdempotencyKey())
			return err
		}, 1},
		// With one (the default), the server replays the first attempt's answer.
		{"POST create", func(c *client.Client) error {
			_, err := c.CreateAPIKey(context.Background(), "acct", client.CreateAPIKeyRequest{Name: "n", Permissions: client.Permissions{}})
			return err
		}, 2},
		{"POST regenerate", func(c *client.Client) error {
			_, err := c.RegenerateAPIKey(context.Background(), "key_a", client.WithGracePeriod(time.Hour))
			return err
		}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := slowThenFast(&calls)
			defer srv.Close()
			c, _ := client.New(srv.URL+"/v1", "sk_test_x",
				client.WithHTTPClient(&http.Client{Timeout: 100 * time.Millisecond}), client.WithRetries(3, time.Second))
			err := tc.call(c)
			if tc.calls == 1 && err == nil {
				t.Fatalf("a %s that timed out was retried", tc.name)
			}
			if tc.calls > 1 && err != nil {
				t.Fatalf("not retried: %v", err)
			}
			if n := calls.Load(); n != tc.calls {
				t.Fatalf("%d requests, want %d", n, tc.calls)
			}
		})
	}
}

func TestGetIsRetriedAfterABrokenConnection(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			conn, _, err := w.(http.Hijacker).Hijack()
			if err == nil {
				if err := conn.(*net.TCPConn).SetLinger(0); err != nil { // a reset, not a clean close
					t.Error(err)
				}
				_ = conn.Close() // the break the client must survive
			}
			return
		}
		writeJSON(w, 200, `{"message":"success","success":true,"data":{"object":"list","data":[],"has_more":false,"next_cursor":null}}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x", client.WithRetries(2, time.Second))
	if _, err := c.ListAPIKeysPage(context.Background(), "acct", client.ListAPIKeysOptions{}); err != nil {
		t.Fatalf("not retried: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d requests", n)
	}
	// Retries stop with the context.
	calls.Store(0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.ListAPIKeysPage(ctx, "acct", client.ListAPIKeysOptions{}); !errors.Is(err, context.Canceled) || !errors.Is(err, client.ErrCanceled) || calls.Load() != 0 {
		t.Fatalf("cancelled: %v after %d requests", err, calls.Load())
	}
}

func TestErrorsAreTyped(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "req_x")
		writeJSON(w, 422, `{"message":"m","success":false,"error":{"code":42204,"message":"Managed keys are rotated with regenerate","details":{"request_id":"req_x"}}}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	_, err := c.DeleteAPIKey(context.Background(), "key_a")
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Code != client.CodeManagedKeyNotDeletable || ae.RequestID != "req_x" || !errors.Is(err, client.ErrUnprocessable) {
		t.Fatalf("%v", err)
	}
}

// The JSON a request sends for an UpdateAPIKeyRequest holds exactly the set fields.
func TestUpdateRequestOmitsUnsetFields(t *testing.T) {
	b, _ := json.Marshal(client.UpdateAPIKeyRequest{})
	if string(b) != "{}" {
		t.Fatalf("%s", b)
	}
}

func TestVerifyKeyOnTheWire(t *testing.T) {
	var body string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		body = r.Method + " " + r.URL.Path + " " + string(b)
		writeJSON(w, 200, `{"message":"success","success":true,"data":{"valid":false,"code":"RATE_LIMITED","id":"key_a","account_id":"acct",`+
			`"mode":"test","type":"PUBLISHABLE","managed":true,"permissions":{"payment":["read"]},"expires_at":null,"in_grace_period":true,`+
			`"grace_period_ends_at":"2030-01-01T00:00:00Z","retry_after_seconds":2}}`)
	}))
	defer srv.Close()
	c, _ := client.New(srv.URL+"/v1", "sk_test_x")
	v, err := c.VerifyKey(context.Background(), "pk_test_abc", client.RequirePermissions("payment:read", "account:api:key:read", "payment:read"))
	if err != nil {
		t.Fatal(err)
	}
	if want := `POST /v1/api-keys/verify {"key":"pk_test_abc","permissions":{"account:api:key":["read"],"payment":["read"]}}`; body != want {
		t.Errorf("sent %s, want %s", body, want)
	}
	if v.Valid || v.Code != client.VerifyRateLimited || !v.Found() || v.ID != "key_a" || v.Mode != client.VerifiedTest || v.Type != client.TypePublishable ||
		!v.Managed || !v.InGracePeriod || v.GracePeriodEndsAt == nil || v.ExpiresAt != nil || v.RetryAfter != 2*time.Second || v.MissingPermissions != nil {
		t.Errorf("verification %+v", v)
	}
	if _, err := c.VerifyKey(context.Background(), "pk_test_abc"); err != nil || body != `POST /v1/api-keys/verify {"key":"pk_test_abc"}` {
		t.Errorf("without permissions: sent %s (%v)", body, err)
	}
}
