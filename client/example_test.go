package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// Each example runs against newFakeAPI, a stand-in for
// https://api.hsrcpay.com/v1 that validates requests against openapi.yaml and
// answers with the spec's documented examples.

func ExampleNew() {
	api := newFakeAPI() // in production: "https://api.hsrcpay.com/v1"
	defer api.Close()

	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"),
		client.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}),
		client.WithRetries(3, time.Minute),
		client.WithUserAgent("checkout-backend/1.4"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.GetAPIKey(context.Background(), "key_4d8PqZyT6vWb2mK9xR3sN7fH")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Name)
	// Output:
	// Checkout backend
}

func ExampleClient_CreateAPIKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	key, err := c.CreateAPIKey(context.Background(), "acct_demo", client.CreateAPIKeyRequest{
		Name:        "Checkout backend",
		Permissions: client.Permissions{"payment": {"create", "read"}, "account:api:key": {"create"}},
		Metadata:    &client.Metadata{"team": "checkout"},
		ExpiresAt:   client.Ptr(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)),
	})
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == client.CodeDuplicateName:
		log.Fatalf("a key named so exists already (request %s)", apiErr.RequestID)
	case err != nil:
		log.Fatal(err)
	}
	// key.Key is the secret: store it now, the API never shows it again.
	fmt.Println(key.ID, key.Status, key.ExpiresAt.Format(time.DateOnly))
	fmt.Println("secret:", key.Key[:len("sk_test_")]+"…", "hint:", *key.KeyHint)
	// Output:
	// key_4d8PqZyT6vWb2mK9xR3sN7fH ACTIVE 2030-01-01
	// secret: sk_test_… hint: sk_test_…3kP9
}

func ExampleClient_RegenerateAPIKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Rotate the managed secret key; the old secret keeps working for an hour.
	rotated, err := c.RegenerateAPIKey(context.Background(), "key_9sT2vX6bN4mQ8wE1rY5uI3oP",
		client.WithGracePeriod(time.Hour))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(rotated.Name, "has a new secret:", *rotated.KeyHint)
	fmt.Println("the previous one works until", rotated.PreviousKeyExpiresAt.Format(time.RFC3339))

	// The API counts grace periods in whole minutes, up to 7 days: anything
	// else is refused before a request is sent.
	_, err = c.RegenerateAPIKey(context.Background(), "key_9sT2vX6bN4mQ8wE1rY5uI3oP",
		client.WithGracePeriod(30*time.Second))
	fmt.Println(errors.Is(err, client.ErrInvalidArgument), err)
	// Output:
	// Managed secret key has a new secret: sk_test_…4bV6
	// the previous one works until 2026-11-22T11:00:00Z
	// true hsrcpay: invalid argument: WithGracePeriod 30s: the API counts grace periods in whole minutes; want whole minutes from 0 to 7 days
}

func ExampleWithIdempotencyKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Each create already carries a random Idempotency-Key and is retried
	// by the client when its answer is lost. To retry across processes (the
	// first one crashed), keep the key with the intent and send it again
	// with the same request: within 24 hours the API answers with the key
	// the first call created instead of making another.
	intent := "provision-checkout-2026-11-26" // persisted before the first call
	req := client.CreateAPIKeyRequest{Name: "Checkout backend", Permissions: client.Permissions{"payment": {"create", "read"}}}
	key, err := c.CreateAPIKey(context.Background(), "acct_demo", req, client.WithIdempotencyKey(intent))
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == client.CodeIdempotencyKeyReused:
		log.Fatal("this key was used for another request") // 422
	case errors.As(err, &apiErr) && apiErr.Code == client.CodeIdempotencyConflict:
		log.Fatalf("still running, or not replayable here: %v", apiErr.Details) // 409
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(key.ID)
	// Output:
	// key_4d8PqZyT6vWb2mK9xR3sN7fH
}

// answerLost is a transport whose requests reach the server but whose
// answers never come back, as when a connection breaks or a server restarts
// at the worst moment.
type answerLost struct{}

func (answerLost) RoundTrip(r *http.Request) (*http.Response, error) {
	res, err := http.DefaultTransport.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	_ = res.Body.Close() // the answer, and the secret in it, is lost
	return nil, io.ErrUnexpectedEOF
}

// A create whose answers are lost: the client retries it with the same
// Idempotency-Key for its budget (30 s by default; shortened here), then
// says that its outcome is unknown and which key resumes it. Sending the
// same request again with that key, now or from another process after a
// crash, returns the key the lost attempt created, with its secret, and
// never creates a second one.
func ExampleUnresolvedError() {
	api := newFakeAPI()
	defer api.Close()
	lossy, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"),
		client.WithHTTPClient(&http.Client{Transport: answerLost{}}),
		client.WithRetryBudget(300*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	req := client.CreateAPIKeyRequest{Name: "Checkout backend", Permissions: client.Permissions{"payment": {"create", "read"}}}

	_, err = lossy.CreateAPIKey(context.Background(), "acct_demo", req)
	var unresolved *client.UnresolvedError
	if !errors.As(err, &unresolved) {
		log.Fatal(err) // a definite answer (the API refused), or none was sent
	}
	// Keep the key with the intent (a log line, a database row) before
	// anything else: it is what recovers the secret.
	fmt.Println("outcome unknown after retries:", unresolved.Attempts > 1, errors.Is(err, client.ErrUnavailable))

	// Later, once the API answers again: the same request, the same key.
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	key, err := c.CreateAPIKey(context.Background(), "acct_demo", req, client.WithIdempotencyKey(unresolved.IdempotencyKey))
	if err != nil {
		log.Fatal(err) // still unresolved: keep the key and try again later
	}
	fmt.Println("resumed:", key.ID, "secret:", key.Key[:len("sk_test_")]+"…")
	// Output:
	// outcome unknown after retries: true true
	// resumed: key_4d8PqZyT6vWb2mK9xR3sN7fH secret: sk_test_…
}

func ExampleClient_GetAPIKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	key, err := c.GetAPIKey(context.Background(), "key_4d8PqZyT6vWb2mK9xR3sN7fH")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Name, key.Status, *key.KeyHint)
	fmt.Println("created by", key.CreatedBy.Kind, key.CreatedBy.ID, "- deleted:", key.Deleted)

	// Another account's key, or one that does not exist, is not found.
	_, err = c.GetAPIKey(context.Background(), "key_0000000000000000000000000")
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// Checkout backend INACTIVE sk_test_…3kP9
	// created by key key_9sT2vX6bN4mQ8wE1rY5uI3oP - deleted: false
	// true
}

func ExampleClient_ListAPIKeys() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Every page, following next_cursor; the first error ends the loop.
	for key, err := range c.ListAPIKeys(context.Background(), "acct_demo", client.ListAPIKeysOptions{
		Status: client.StatusActive, Managed: client.Ptr(false), Limit: 100,
	}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(key.ID, key.Name, key.Status, *key.KeyHint)
	}
	// Output:
	// key_4d8PqZyT6vWb2mK9xR3sN7fH Checkout backend ACTIVE sk_test_…3kP9
}

func ExampleClient_ListAPIKeysPage() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	opts := client.ListAPIKeysOptions{Limit: 20}
	for {
		page, err := c.ListAPIKeysPage(context.Background(), "acct_demo", opts)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(len(page.Data), "key(s) on this page; more:", page.HasMore)
		if !page.HasMore {
			break
		}
		opts.Cursor = *page.NextCursor
	}
	// Output:
	// 1 key(s) on this page; more: false
}

func ExampleClient_UpdateAPIKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Switch the key off: its secret is refused at once. client.Enable()
	// switches it back on, client.Rename sets its name, and any other field
	// can be set with client.UpdateAPIKeyRequest (nil fields are unchanged).
	key, err := c.UpdateAPIKey(context.Background(), "key_4d8PqZyT6vWb2mK9xR3sN7fH", client.Disable())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(key.Name, key.Status, key.Status == client.StatusInactive)
	// Output:
	// Checkout backend INACTIVE true
}

func ExampleClient_DeleteAPIKey() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Revoke a custom key for good; deleting it again answers the same.
	key, err := c.DeleteAPIKey(context.Background(), "key_4d8PqZyT6vWb2mK9xR3sN7fH")
	var apiErr *client.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.Code == client.CodeManagedKeyNotDeletable:
		log.Fatal("managed keys are rotated with RegenerateAPIKey, never deleted")
	case err != nil:
		log.Fatal(err)
	}
	fmt.Println(key.ID, "deleted:", key.Deleted)
	// Output:
	// key_4d8PqZyT6vWb2mK9xR3sN7fH deleted: true
}

func ExampleClient_ListAuditEvents() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// Newest first, every page.
	for ev, err := range c.ListAuditEvents(context.Background(), "acct_demo", client.ListAuditEventsOptions{}) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(ev.Seq, ev.CreatedAt.Format(time.RFC3339), ev.Action, ev.KeyID, "by", ev.Actor.Kind, ev.Actor.ID)
	}
	// Output:
	// 2 2026-11-23T09:00:00Z disable key_4d8PqZyT6vWb2mK9xR3sN7fH by jwt ann@example.com
	// 1 2026-11-22T10:00:00Z create key_4d8PqZyT6vWb2mK9xR3sN7fH by key key_9sT2vX6bN4mQ8wE1rY5uI3oP
}

func ExampleVerifyAuditChain() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// All of the account's events (no KeyID or Action filter), in any order.
	events, err := client.Collect(c.ListAuditEvents(context.Background(), "acct_demo", client.ListAuditEventsOptions{Limit: 100}))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(events), "events; chain:", client.VerifyAuditChain(events))
	head := events[0] // keep the head: a later chain must still contain it
	fmt.Println("head: seq", head.Seq, "hash", head.Hash[:12]+"…")

	// An event changed after it was written breaks the chain at its seq.
	events[0].Changes["status"] = "ACTIVE"
	var broken *client.AuditChainError
	if errors.As(client.VerifyAuditChain(events), &broken) {
		fmt.Println("broken at seq", broken.Seq, "-", broken.Reason)
	}
	// Output:
	// 2 events; chain: <nil>
	// head: seq 2 hash 813bd18602d3…
	// broken at seq 2 - the event was changed after it was written (hash mismatch)
}

// Errors match a Kind with errors.Is: the API's answers by their status
// (*client.Error, whose Code says why), failures to get an answer
// (*client.TransportError), and arguments refused before any request
// (*client.ArgumentError).
func Example_errors() {
	api := newFakeAPI()
	defer api.Close()
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	_, err = c.GetAPIKey(ctx, "key_0000000000000000000000000")
	var apiErr *client.Error
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.StatusCode, apiErr.Code == client.CodeKeyNotFound, apiErr.Message, apiErr.RequestID)
	}
	fmt.Println(errors.Is(err, client.ErrNotFound), errors.Is(err, client.ErrConflict))

	_, err = client.Collect(c.ListAPIKeys(ctx, "acct_demo", client.ListAPIKeysOptions{Limit: 500}))
	fmt.Println(errors.Is(err, client.ErrInvalidArgument), err)

	down := httptest.NewServer(nil)
	down.Close() // nothing listens there any more
	unreachable, _ := client.New(down.URL+"/v1", "sk_test_x", client.WithRetries(0, 0))
	_, err = unreachable.GetAPIKey(ctx, "key_4d8PqZyT6vWb2mK9xR3sN7fH")
	var te *client.TransportError
	fmt.Println(errors.Is(err, client.ErrUnavailable), errors.As(err, &te) && te.Kind == client.ErrUnavailable)

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = c.GetAPIKey(cancelled, "key_4d8PqZyT6vWb2mK9xR3sN7fH")
	fmt.Println(errors.Is(err, client.ErrCanceled), errors.Is(err, context.Canceled))
	// Output:
	// 404 true API key not found 01JD8Y6W7Q2X3Z4A5B6C7D8E9F
	// true false
	// true hsrcpay: invalid argument: ListAPIKeysOptions.Limit 500: want 1 to 100, or 0 for the server's default (20)
	// true true
	// true true
}

func ExampleClient_VerifyKey() {
	api := newFakeAPI()
	defer api.Close()
	// The service's own token: it holds account:api:key:verify.
	c, err := client.New(api.URL, os.Getenv("HSRCPAY_API_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// The key the service's own caller presented, and what its request needs.
	presented := "sk_test_8Jd2kLq9ZxV4mN7pR1sT6wY3bC5fH0gA3kP9qZ"
	v, err := c.VerifyKey(context.Background(), presented, client.RequirePermissions("payment:create"))
	if err != nil {
		log.Fatal(err) // about the verify request (this service's token, the API), never the key
	}
	switch {
	case v.Valid:
		fmt.Println("serve account", v.AccountID)
	case v.Code == client.VerifyInsufficientPermissions:
		fmt.Println("403: key", v.ID, "of", v.AccountID, "lacks", v.MissingPermissions)
	case v.Code == client.VerifyRateLimited:
		fmt.Println("429: retry after", v.RetryAfter)
	default: // NOT_FOUND, REVOKED, DISABLED, EXPIRED, or a code added later
		fmt.Println("401:", v.Code)
	}
	// Output:
	// 403: key key_4d8PqZyT6vWb2mK9xR3sN7fH of acct_demo lacks [payment:create]
}
