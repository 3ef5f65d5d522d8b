package client

// ErrorCode is the stable code of an API error ([Error.Code]); its first
// three digits are the HTTP status. Codes are never reused or removed, but
// new ones are added as the API grows: handle a code you do not know by its
// status, as the [Kind] values do (errors.Is(err, client.ErrConflict)).
type ErrorCode int

// Error codes, as the API's error table lists them (status, then meaning).
const (
	// CodeValidationFailed (400): the request does not match the schema;
	// Error.Fields lists each field.
	CodeValidationFailed ErrorCode = 40000
	// CodeMalformedBody (400): the body is not valid JSON.
	CodeMalformedBody ErrorCode = 40001

	// CodeMissingCredentials (401): no bearer token.
	CodeMissingCredentials ErrorCode = 40100
	// CodeInvalidCredentials (401): the token is malformed, unknown, revoked
	// or deleted (a disabled or deleted key's secret, or one rotated without
	// a grace period).
	CodeInvalidCredentials ErrorCode = 40101
	// CodeExpiredCredentials (401): the token has expired or is not valid yet.
	CodeExpiredCredentials ErrorCode = 40102
	// CodeBadLeakSignature (401): a leak report's GitHub signature is
	// missing, malformed, by an unknown key or does not verify (GitHub calls
	// that route, not clients; listed so that every code has a name).
	CodeBadLeakSignature ErrorCode = 40104

	// CodePermissionDenied (403): the credential lacks the operation's
	// permission.
	CodePermissionDenied ErrorCode = 40300
	// CodeAccountForbidden (403): the credential may not act on this account.
	CodeAccountForbidden ErrorCode = 40301
	// CodePrivilegeEscalation (403): the key would hold permissions the
	// caller lacks; Error.Details["missing"] lists them.
	CodePrivilegeEscalation ErrorCode = 40302
	// CodePublishableKeyForbidden (403): publishable keys cannot manage keys.
	CodePublishableKeyForbidden ErrorCode = 40303
	// CodeReplacedSecret (403): the credential is a replaced secret in its
	// grace period: it may use the API but manages no keys.
	CodeReplacedSecret ErrorCode = 40304
	// CodeLifetimeEscalation (403): the key would outlive the credential that
	// regenerates it.
	CodeLifetimeEscalation ErrorCode = 40305
	// CodeNetworkEscalation (403): the key would work from networks outside
	// the caller's allowed_networks (create, update), or already does
	// (regenerate, update, delete).
	CodeNetworkEscalation ErrorCode = 40306
	// CodeRateLimitEscalation (403): the key would have a larger rate limit
	// than the caller's own per-key one, or none (create, update), or
	// already has (regenerate, update, delete).
	CodeRateLimitEscalation ErrorCode = 40307
	// CodeCreditEscalation (403): the key would have more credits than the
	// caller's own, none, or a larger or more frequent refill (create,
	// update), or already has (regenerate, update, delete).
	CodeCreditEscalation ErrorCode = 40308

	// CodeKeyNotFound (404): no such API key, or not visible to this
	// credential (another account's or mode's).
	CodeKeyNotFound ErrorCode = 40400
	// CodeAccountNotFound (404): no such account.
	CodeAccountNotFound ErrorCode = 40401
	// CodeRouteNotFound (404): no such route; the base URL given to New
	// should end in /v1.
	CodeRouteNotFound ErrorCode = 40402
	// CodeSecretScanningOff (404): the leak report route is not configured
	// on this server.
	CodeSecretScanningOff ErrorCode = 40403

	// CodeMethodNotAllowed (405): the route exists but not with this method.
	CodeMethodNotAllowed ErrorCode = 40500

	// CodeDuplicateName (409): an active key with this name already exists
	// on the account.
	CodeDuplicateName ErrorCode = 40900
	// CodeKeyNotActive (409): the key is not active.
	CodeKeyNotActive ErrorCode = 40901
	// CodeKeyLimitReached (409): the account already holds the maximum number
	// of active keys.
	CodeKeyLimitReached ErrorCode = 40902
	// CodeKeyDeleted (409): the key is deleted and cannot change.
	CodeKeyDeleted ErrorCode = 40903
	// CodeIdempotencyConflict (409): a request with this Idempotency-Key is
	// still running (Details["replayable"] true: retry later for its
	// answer), or it completed and this server cannot replay its answer
	// (Details["replayable"] false: it will not run again).
	CodeIdempotencyConflict ErrorCode = 40904

	// CodeBodyTooLarge (413): the body is larger than 64 KiB.
	CodeBodyTooLarge ErrorCode = 41300

	// CodeUnsupportedMediaType (415): the body is not application/json.
	CodeUnsupportedMediaType ErrorCode = 41500

	// CodeUnknownPermission (422): unknown permission resource or action.
	CodeUnknownPermission ErrorCode = 42200
	// CodeKeyNotManaged (422): the key is a custom key: only managed keys are
	// regenerated.
	CodeKeyNotManaged ErrorCode = 42201
	// CodeInvalidExpiry (422): expires_at is not in the future, or later than
	// 9999-12-31T23:59:59Z.
	CodeInvalidExpiry ErrorCode = 42202
	// CodeLifetimeExceedsCaller (422): expires_at is absent or later than the
	// expiry of the key that creates it; Error.Details["max_expires_at"] says
	// how late it may be.
	CodeLifetimeExceedsCaller ErrorCode = 42203
	// CodeManagedKeyNotDeletable (422): managed keys are rotated with
	// RegenerateAPIKey, never deleted.
	CodeManagedKeyNotDeletable ErrorCode = 42204
	// CodeManagedKeyFixed (422): a managed key's name and expiry cannot
	// change, and the managed secret key (the account's root credential)
	// cannot be switched off, restricted to networks or given credits.
	CodeManagedKeyFixed ErrorCode = 42205
	// CodeExpiryExtended (422): expires_at can only move earlier.
	CodeExpiryExtended ErrorCode = 42206
	// CodeIdempotencyKeyReused (422): this Idempotency-Key was used for a
	// different request; use a new key for a new request.
	CodeIdempotencyKeyReused ErrorCode = 42207
	// CodeCreditsInvalid (422): credits_add for a key without credits, or
	// beside credits, or a refill day on a daily refill.
	CodeCreditsInvalid ErrorCode = 42208

	// CodeRateLimited (429): too many requests for this credential or its
	// account; Error.RetryAfter says when to retry.
	CodeRateLimited ErrorCode = 42900
	// CodeTooManyAuthFailures (429): too many failed authentications from
	// this client address.
	CodeTooManyAuthFailures ErrorCode = 42901

	// CodeInternal (500): internal error; retry later, quoting the request id.
	CodeInternal ErrorCode = 50000
	// CodeStoreUnavailable (503): the key store is unreachable, too slow or
	// full; Error.RetryAfter says when to retry. On a write,
	// Error.Details["outcome"] == "unknown" means the change may have been
	// made: repeat it with the same idempotency key, or read before retrying.
	CodeStoreUnavailable ErrorCode = 50300
)

// Valid reports whether c is one of the codes above (the spec's table at the
// time of this client's release; a newer server may send others).
func (c ErrorCode) Valid() bool {
	switch c {
	case CodeValidationFailed, CodeMalformedBody, CodeMissingCredentials, CodeInvalidCredentials, CodeExpiredCredentials, CodeBadLeakSignature, CodePermissionDenied, CodeAccountForbidden, CodePrivilegeEscalation, CodePublishableKeyForbidden, CodeReplacedSecret, CodeLifetimeEscalation, CodeNetworkEscalation, CodeRateLimitEscalation, CodeCreditEscalation, CodeKeyNotFound, CodeAccountNotFound, CodeRouteNotFound, CodeSecretScanningOff, CodeMethodNotAllowed, CodeDuplicateName, CodeKeyNotActive, CodeKeyLimitReached, CodeKeyDeleted, CodeIdempotencyConflict, CodeBodyTooLarge, CodeUnsupportedMediaType, CodeUnknownPermission, CodeKeyNotManaged, CodeInvalidExpiry, CodeLifetimeExceedsCaller, CodeManagedKeyNotDeletable, CodeManagedKeyFixed, CodeExpiryExtended, CodeIdempotencyKeyReused, CodeCreditsInvalid, CodeRateLimited, CodeTooManyAuthFailures, CodeInternal, CodeStoreUnavailable:
		return true
	}
	return false
}
