// Package client is the Go client for the HSRCPAY API-key service
// (import "github.com/hsrcpay/apikeys/client"): typed methods over the
// client generated from openapi.yaml. Everything a caller needs to pass or
// compare is declared here, with its fields (request and result types, enum
// values, error codes and kinds), and held equal to the spec by a test; enums
// compare with this package's constants (key.Status == client.StatusActive).
// The generated package client/oapi is an implementation detail, reachable
// through [Client.Raw] for what this package does not cover.
//
// Make a Client with [New], whose base URL ends in /v1: the zero Client
// returns [ErrNotConfigured], and an answer "no such route" to a base URL
// without /v1 says so in [Error.Hint]. What the spec requires of a request
// (a non-nil Permissions, a name of 1 to 100 characters, at least one field
// in an update, …) is checked before sending, as an [*ArgumentError].
//
// # The common flow
//
//	c, err := client.New("https://api.hsrcpay.com/v1", os.Getenv("HSRCPAY_API_KEY"))
//	if err != nil { … }
//
//	// Issue a key: its Key field is the secret, shown only in this answer.
//	key, err := c.CreateAPIKey(ctx, "acct_123", client.CreateAPIKeyRequest{
//		Name:        "Checkout backend",
//		Permissions: client.Permissions{"payment": {"create", "read"}},
//	})
//	var apiErr *client.Error
//	if errors.As(err, &apiErr) && apiErr.Code == client.CodeDuplicateName { … }
//
//	// Rotate a managed key; the old secret keeps working for an hour.
//	rotated, err := c.RegenerateAPIKey(ctx, managedKeyID, client.WithGracePeriod(time.Hour))
//
//	// Read, list (every page), switch off, revoke.
//	view, err := c.GetAPIKey(ctx, key.ID)
//	for k, err := range c.ListAPIKeys(ctx, "acct_123", client.ListAPIKeysOptions{Status: client.StatusActive}) {
//		if err != nil { … }
//		fmt.Println(k.ID, k.Name)
//	}
//	view, err = c.UpdateAPIKey(ctx, key.ID, client.Disable())
//	view, err = c.DeleteAPIKey(ctx, key.ID)
//
//	// Check the audit record's hash chain without trusting the server.
//	events, err := client.Collect(c.ListAuditEvents(ctx, "acct_123", client.ListAuditEventsOptions{Limit: 100}))
//	err = client.VerifyAuditChain(events)
//
//	// Another HSRCPAY service authenticates the key its caller presented
//	// (its own token holds account:api:key:verify): every verdict is a
//	// *Verification, a key that does not work included; err is about the request.
//	v, err := c.VerifyKey(ctx, presentedKey, client.RequirePermissions("payment:create"))
//	if err == nil && !v.Valid { … v.Code: VerifyNotFound, VerifyRevoked, VerifyInsufficientPermissions, … }
//
// Each operation has an example below that runs as a test against a fake
// server answering with the examples of openapi.yaml.
//
// # Errors
//
// A method returns one of three kinds of error, each matching a [Kind] with
// errors.Is so that callers never switch on status codes or dig into net/http:
//
//   - [*Error]: the API answered with an error. It carries the envelope's
//     [ErrorCode] (compare it with the Code… constants), message, details,
//     failing fields and the request id, all of which its message prints
//     ("hsrcpay: 422 … (code 42200): unknown=["payment:explode"];
//     request_id=req_…"), and matches [ErrInvalidRequest], [ErrUnauthorized],
//     [ErrForbidden], [ErrNotFound], [ErrConflict], [ErrUnprocessable],
//     [ErrRateLimited] or [ErrServer] by its status.
//   - [*TransportError]: no answer came: [ErrUnavailable] (connection refused
//     or reset, unknown host), [ErrTimeout] (a context deadline or the HTTP
//     client's timeout), [ErrCanceled] (the context was cancelled) or
//     [ErrTransport] (anything else, such as a TLS certificate that does not
//     verify). errors.Is(err, context.Canceled) and
//     errors.Is(err, context.DeadlineExceeded) hold as well, and the error
//     net/http returned stays reachable with errors.As.
//   - [*ArgumentError]: an argument or option the API cannot express or would
//     refuse, such as WithGracePeriod(30*time.Second) or a Limit of 500, found
//     before any request is sent; it matches [ErrInvalidArgument].
//
// # Retries
//
// Retries ([WithRetries]) depend on the method: a 429 and a refused
// connection are retried for every request; GET (read, list), DELETE
// (idempotent by contract: a second delete answers 200 with the deleted key)
// and verify (a POST that changes nothing) are also retried after a timeout
// or a broken connection. Create and regenerate send an Idempotency-Key (a
// new random 128-bit value per call; [WithIdempotencyKey] gives your own)
// and are retried whenever their outcome is unknown (a timeout, a broken or
// refused connection, 502, 503, 504, or a 409 saying an earlier attempt is
// still running) for up to 30 seconds ([WithRetryBudget]), with jittered
// exponential backoff: long enough to ride out a server restart. The server
// answers a retry with the first attempt's key and secret, never a second
// one. If the retries run out, the error is an [*UnresolvedError] carrying
// the Idempotency-Key: the key may exist with its secret unseen, and sending
// the same request with WithIdempotencyKey(that key), within 24 hours,
// returns it (or creates it, once, if it does not). With
// [WithoutIdempotencyKey] they, like PATCH (update), are never retried once
// their outcome is unknown.
package client
