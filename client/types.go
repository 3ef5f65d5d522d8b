package client

import "time"

// The spec's types, declared here so that `go doc` shows their fields and
// their enums compare with this package's constants (key.Status ==
// client.StatusActive). They are not a second source of truth: the JSON
// names, the optional fields and the enum values are held equal to the
// schemas of openapi.yaml (through the generated client/oapi) by
// TestTypesMatchTheSpec, and the client encodes and decodes these types
// itself.

// APIKey is a key as created or regenerated: its Key field holds the
// plaintext secret, which the API never shows again.
type APIKey struct {
	// ID is the key's id, such as "key_4d8PqZyT6vWb2mK9xR3sN7fH".
	ID string `json:"id"`
	// Key is the plaintext secret. Store it now; it is never shown again.
	Key string `json:"key"`
	// KeyHint is enough of the secret for a person to recognise it, never
	// enough to use it, e.g. "sk_live_…Wx9Q"; nil for keys created before
	// hints were kept.
	KeyHint *string `json:"key_hint"`
	// AccountID is the account the key belongs to, such as "acct_demo".
	AccountID string `json:"account_id"`
	// Name is the display name, unique among the account's active keys.
	Name string `json:"name"`
	// Type is TypeSecret or TypePublishable.
	Type KeyType `json:"type"`
	// Status is StatusActive, StatusInactive or StatusExpired.
	Status KeyStatus `json:"status"`
	// Managed is true for platform-provisioned keys, which are rotated with
	// RegenerateAPIKey and never deleted.
	Managed bool `json:"managed"`
	// Deleted is true once the key is deleted; deleted keys never
	// authenticate.
	Deleted bool `json:"deleted"`
	// Permissions maps each resource to the actions the key may perform.
	Permissions Permissions `json:"permissions"`
	// Metadata is the caller's free-form string pairs.
	Metadata Metadata `json:"metadata"`
	// CreatedBy says who created the key, and in which request.
	CreatedBy CreatedBy `json:"created_by"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the key last changed (a regenerate included).
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt is when the key stops working; nil for no expiry.
	ExpiresAt *time.Time `json:"expires_at"`
	// PreviousKeyExpiresAt is until when the previous secret still works
	// after a regenerate with a grace period; nil when only the current
	// secret works.
	PreviousKeyExpiresAt *time.Time `json:"previous_key_expires_at"`
	// LastUsedAt is the time of the latest authenticated request (updated
	// within seconds); nil if never used.
	LastUsedAt *time.Time `json:"last_used_at"`
	// LastUsedIP is the client address of that request.
	LastUsedIP *string `json:"last_used_ip"`
	// AllowedNetworks are the client addresses the key works from (CIDR
	// prefixes, canonical: "10.0.0.0/8", an address as "203.0.113.7/32");
	// nil when it works from any address.
	AllowedNetworks *[]string `json:"allowed_networks,omitempty"`
	// RateLimit is the key's own request budget; nil when it spends its
	// mode's default.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Credits are the key's usage credits as of the answer (a refill that
	// was due applied); nil when verifies of it spend none.
	Credits *Credits `json:"credits,omitempty"`
}

// APIKeyView is a key as read, listed, updated or deleted: everything but the
// secret, which KeyHint recognises (e.g. "sk_test_…3kP9").
type APIKeyView struct {
	// ID is the key's id, such as "key_4d8PqZyT6vWb2mK9xR3sN7fH".
	ID string `json:"id"`
	// KeyHint is the secret's prefix and last four characters, e.g.
	// "sk_live_…Wx9Q"; nil for keys created before hints were kept.
	KeyHint *string `json:"key_hint"`
	// AccountID is the account the key belongs to, such as "acct_demo".
	AccountID string `json:"account_id"`
	// Name is the display name.
	Name string `json:"name"`
	// Type is TypeSecret or TypePublishable.
	Type KeyType `json:"type"`
	// Status is StatusActive, StatusInactive (switched off) or
	// StatusExpired (past ExpiresAt).
	Status KeyStatus `json:"status"`
	// Managed is true for platform-provisioned keys.
	Managed bool `json:"managed"`
	// Deleted is true once the key is revoked; deleted keys never
	// authenticate.
	Deleted bool `json:"deleted"`
	// Permissions maps each resource to the actions the key may perform.
	Permissions Permissions `json:"permissions"`
	// Metadata is the caller's free-form string pairs.
	Metadata Metadata `json:"metadata"`
	// CreatedBy says who created the key, and in which request.
	CreatedBy CreatedBy `json:"created_by"`
	// CreatedAt is when the key was created.
	CreatedAt time.Time `json:"created_at"`
	// UpdatedAt is when the key last changed.
	UpdatedAt time.Time `json:"updated_at"`
	// ExpiresAt is when the key stops working; nil for no expiry.
	ExpiresAt *time.Time `json:"expires_at"`
	// PreviousKeyExpiresAt is until when a replaced secret still works; nil
	// when only the current one does.
	PreviousKeyExpiresAt *time.Time `json:"previous_key_expires_at"`
	// LastUsedAt is the time of the latest authenticated request (updated
	// within seconds); nil if never used.
	LastUsedAt *time.Time `json:"last_used_at"`
	// LastUsedIP is the client address of that request.
	LastUsedIP *string `json:"last_used_ip"`
	// AllowedNetworks are the client addresses the key works from (CIDR
	// prefixes, canonical: "10.0.0.0/8", an address as "203.0.113.7/32");
	// nil when it works from any address.
	AllowedNetworks *[]string `json:"allowed_networks,omitempty"`
	// RateLimit is the key's own request budget; nil when it spends its
	// mode's default.
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Credits are the key's usage credits as of the answer (a refill that
	// was due applied); nil when verifies of it spend none.
	Credits *Credits `json:"credits,omitempty"`
}

// CreateAPIKeyRequest is a new key's name, permissions, and optional expiry
// and metadata. [Client.CreateAPIKey] checks what the spec requires of it
// (a name of 1 to 100 characters without control characters, a non-nil
// Permissions of at most 32 resources, …) before sending anything.
type CreateAPIKeyRequest struct {
	// Name is the display name (required): 1 to 100 characters, no control
	// characters, no white space at either end; unique among the account's
	// live keys as people see names (else CodeDuplicateName).
	Name string `json:"name"`
	// Permissions maps each resource to the actions the key may perform
	// (required: Permissions{} for a key that holds none). Each must be in
	// the catalog (else CodeUnknownPermission) and held by the caller (else
	// CodePrivilegeEscalation).
	Permissions Permissions `json:"permissions"`
	// ExpiresAt is when the key stops working; nil for no expiry, unless the
	// creating credential is a key that expires (then it is required and at
	// most that key's expiry).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// Metadata is free-form string pairs for the caller's own use; nil for
	// none.
	Metadata *Metadata `json:"metadata,omitempty"`
	// AllowedNetworks restricts the key to client addresses: IPv4 or IPv6
	// addresses and CIDR prefixes ("10.0.0.0/8", "2001:db8::/32"), at most
	// 32; nil for any address. A caller restricted to networks must give a
	// subset of its own (else CodeNetworkEscalation).
	AllowedNetworks *[]string `json:"allowed_networks,omitempty"`
	// RateLimit is the key's own request budget, replacing its mode's
	// default; nil for the default. A caller with its own limit must give
	// one no larger as a rate (else CodeRateLimitEscalation).
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Credits are the key's usage credits; nil for none. A caller with
	// credits must give some within its own: no more Remaining, a Refill only
	// if it has one, of no larger Amount and no shorter Interval (else
	// CodeCreditEscalation).
	Credits *Credits `json:"credits,omitempty"`
}

// Credits are a key's usage credits: every verify of the key that would
// otherwise be VerifyValid spends its cost ([Cost], 1 by default) from
// Remaining; with fewer left the verdict is VerifyUsageExceeded and nothing
// is spent. Spends are exact on every replica (the key store decides).
// Requests made with the key spend none. Once set, credits are changed
// ([UpdateAPIKeyRequest.Credits], CreditsAdd), never removed; the managed
// secret key has none (CodeManagedKeyFixed).
type Credits struct {
	// Remaining is what is left (0 to 1e12); in answers, as of the answer.
	Remaining int64 `json:"remaining"`
	// Refill puts Remaining back to an amount daily or monthly; nil: never.
	Refill *CreditRefill `json:"refill,omitempty"`
}

// CreditRefill puts Remaining back to Amount (not added to it) at 00:00 UTC
// of every day (RefillDaily) or of Day of every month (RefillMonthly; in a
// shorter month, its last day).
type CreditRefill struct {
	// Amount is what Remaining becomes, 1 to 1e12.
	Amount int64 `json:"amount"`
	// Day is a monthly refill's day, 1 to 31 (nil: 1); nil for daily ones
	// (else CodeCreditsInvalid).
	Day *int `json:"day,omitempty"`
	// Interval is RefillDaily or RefillMonthly.
	Interval RefillInterval `json:"interval"`
}

// RefillInterval is how often credits refill.
type RefillInterval string

// Refill intervals.
const (
	RefillDaily   RefillInterval = "daily"   // at 00:00 UTC every day
	RefillMonthly RefillInterval = "monthly" // at 00:00 UTC on CreditRefill.Day every month
)

// Valid reports whether i is RefillDaily or RefillMonthly.
func (i RefillInterval) Valid() bool { return i == RefillDaily || i == RefillMonthly }

// RateLimit is a key's own request budget: at most Limit requests per
// Window ("30s", "1m", "1h", "1d": a whole number of s, m, h or d, from 1s
// to 1d), a token bucket with a burst of Limit. Past it the key's requests
// get ErrRateLimited (CodeRateLimited) and verify says VerifyRateLimited.
type RateLimit struct {
	// Limit is the requests allowed per window, 1 to 1000000.
	Limit int `json:"limit"`
	// Window is the window, e.g. "1m".
	Window string `json:"window"`
}

// UpdateAPIKeyRequest holds the fields to change (at least one); nil fields
// keep their value. [Disable], [Enable] and [Rename] build common ones; [Ptr]
// helps with the rest.
type UpdateAPIKeyRequest struct {
	// Name is a new display name, with the same rules as at creation.
	Name *string `json:"name,omitempty"`
	// Metadata replaces the whole map (&Metadata{} clears it).
	Metadata *Metadata `json:"metadata,omitempty"`
	// Status switches the key off (UpdateStatusInactive) or back on
	// (UpdateStatusActive).
	Status *UpdateStatus `json:"status,omitempty"`
	// ExpiresAt is an earlier expiry (never later than the current one, and
	// in the future).
	ExpiresAt *time.Time `json:"expires_at,omitempty"`
	// AllowedNetworks replaces the key's networks; &[]string{} lifts the
	// restriction (only a caller not restricted itself may).
	AllowedNetworks *[]string `json:"allowed_networks,omitempty"`
	// RateLimit replaces the key's own request budget (a per-key limit is
	// changed, never removed).
	RateLimit *RateLimit `json:"rate_limit,omitempty"`
	// Credits replace the key's credits, Remaining and Refill (nil Refill:
	// none). A caller with credits sets none beyond its own
	// (CodeCreditEscalation).
	Credits *Credits `json:"credits,omitempty"`
	// CreditsAdd adds to what a key with credits has left (1 to 1e12), in
	// the same transaction as the check; not beside Credits, and only for a
	// key that has credits (else CodeCreditsInvalid).
	CreditsAdd *int64 `json:"credits_add,omitempty"`
}

// Permissions maps a resource to its actions:
// client.Permissions{"payment": {"create", "read"}} grants payment:create and
// payment:read.
type Permissions map[string][]string

// Metadata is free-form string pairs for the caller's own use: at most 20
// keys of up to 40 characters, values up to 500.
type Metadata map[string]string

// CreatedBy says who created a key (or made the change an audit event
// records), and in which request.
type CreatedBy struct {
	// Kind is CreatedByKey, CreatedByJWT or CreatedByPlatform.
	Kind CreatedByKind `json:"kind"`
	// ID is the key id or JWT subject; for CreatedByPlatform, what the
	// service did on its own ("bootstrap" for provisioned keys and their
	// rotation, "secret-scanning" for a leak report's changes).
	ID string `json:"id"`
	// RequestID is the X-Request-Id of the request; "" for
	// platform-provisioned keys.
	RequestID string `json:"request_id"`
}

// FieldError is one reason a request failed validation (code
// [CodeValidationFailed]); [Error.Fields] lists them.
type FieldError struct {
	// Location is where the field is: LocationBody, LocationQuery,
	// LocationPath or LocationHeader.
	Location FieldLocation `json:"location"`
	// Field is a JSON pointer into the body ("/permissions/payment"), or
	// the parameter's name.
	Field string `json:"field"`
	// Reason says what is wrong with it.
	Reason string `json:"reason"`
}

// AuditEvent is one change to a key, hash-chained per account and mode; see
// [VerifyAuditChain].
type AuditEvent struct {
	// ID is the event's id.
	ID string `json:"id"`
	// Seq is the event's position in the account's chain in this mode, from 1.
	Seq int `json:"seq"`
	// AccountID is the account whose key changed.
	AccountID string `json:"account_id"`
	// Mode is the chain's mode: ModeLive or ModeTest.
	Mode Mode `json:"mode"`
	// Action is what happened to the key.
	Action AuditAction `json:"action"`
	// KeyID is the key that changed.
	KeyID string `json:"key_id"`
	// Actor is who made the change, and in which request.
	Actor CreatedBy `json:"actor"`
	// ClientIP is the address of the client that made the change; "" outside
	// a request.
	ClientIP string `json:"client_ip"`
	// CreatedAt is when the change committed.
	CreatedAt time.Time `json:"created_at"`
	// Changes holds the fields that changed, each with its new value (never
	// a secret or a hash).
	Changes map[string]any `json:"changes"`
	// PrevHash is the hex SHA-256 of the previous event; "" for the first.
	PrevHash string `json:"prev_hash"`
	// Hash is the hex SHA-256 of this event ([AuditEventHash]).
	Hash string `json:"hash"`
}

// APIKeyPage is one page of [Client.ListAPIKeysPage]: NextCursor fetches the
// next while HasMore.
type APIKeyPage struct {
	// Data holds the keys of this page, oldest first.
	Data []APIKeyView `json:"data"`
	// HasMore is true when another page follows.
	HasMore bool `json:"has_more"`
	// NextCursor is the Cursor of the next page; nil on the last page.
	NextCursor *string `json:"next_cursor"`
}

// AuditEventPage is one page of [Client.ListAuditEventsPage]: NextCursor
// fetches the next while HasMore.
type AuditEventPage struct {
	// Data holds the events of this page, newest first.
	Data []AuditEvent `json:"data"`
	// HasMore is true when another page follows.
	HasMore bool `json:"has_more"`
	// NextCursor is the Cursor of the next page; nil on the last page.
	NextCursor *string `json:"next_cursor"`
}

// KeyStatus is the status of an [APIKey] or [APIKeyView], and a filter of
// [ListAPIKeysOptions].
type KeyStatus string

// Key statuses.
const (
	StatusActive   KeyStatus = "ACTIVE"   // the key authenticates
	StatusInactive KeyStatus = "INACTIVE" // the key was switched off (Disable); Enable switches it back on
	StatusExpired  KeyStatus = "EXPIRED"  // the key is past its expires_at
)

// Valid reports whether s is one of the statuses above.
func (s KeyStatus) Valid() bool {
	return s == StatusActive || s == StatusInactive || s == StatusExpired
}

// KeyType is the type of an [APIKey] or [APIKeyView], and a filter of
// [ListAPIKeysOptions].
type KeyType string

// Key types.
const (
	TypeSecret      KeyType = "SECRET"      // a key for servers; it may manage keys if its permissions say so
	TypePublishable KeyType = "PUBLISHABLE" // a key safe in browsers; it never manages keys
)

// Valid reports whether t is one of the types above.
func (t KeyType) Valid() bool { return t == TypeSecret || t == TypePublishable }

// UpdateStatus is the status an [UpdateAPIKeyRequest] sets; [Disable] and
// [Enable] set it for you.
type UpdateStatus string

// Statuses an update sets.
const (
	UpdateStatusActive   UpdateStatus = "ACTIVE"   // switch the key back on
	UpdateStatusInactive UpdateStatus = "INACTIVE" // switch the key off at once
)

// Valid reports whether s is one of the statuses an update sets.
func (s UpdateStatus) Valid() bool { return s == UpdateStatusActive || s == UpdateStatusInactive }

// CreatedByKind is the kind of principal in a [CreatedBy]: a key, a person's
// JWT or the platform.
type CreatedByKind string

// Kinds of creator; CreatedBy.ID is then a key id, a JWT subject, or
// "bootstrap".
const (
	CreatedByKey      CreatedByKind = "key"      // an API key; ID is its key id
	CreatedByJWT      CreatedByKind = "jwt"      // a person; ID is the token's sub
	CreatedByPlatform CreatedByKind = "platform" // provisioned by the service (managed keys); ID is "bootstrap"
)

// Valid reports whether k is one of the kinds above.
func (k CreatedByKind) Valid() bool {
	return k == CreatedByKey || k == CreatedByJWT || k == CreatedByPlatform
}

// AuditAction is what an [AuditEvent] records, and a filter of
// [ListAuditEventsOptions].
type AuditAction string

// Audit actions.
const (
	AuditCreate     AuditAction = "create"     // a key was created
	AuditRegenerate AuditAction = "regenerate" // a managed key's secret was rotated
	AuditUpdate     AuditAction = "update"     // a key's name, metadata or expiry changed
	AuditDisable    AuditAction = "disable"    // a key was switched off
	AuditEnable     AuditAction = "enable"     // a key was switched back on
	AuditDelete     AuditAction = "delete"     // a custom key was revoked
	AuditBootstrap  AuditAction = "bootstrap"  // the platform provisioned a managed key
)

// Valid reports whether a is one of the actions above.
func (a AuditAction) Valid() bool {
	switch a {
	case AuditCreate, AuditRegenerate, AuditUpdate, AuditDisable, AuditEnable, AuditDelete, AuditBootstrap:
		return true
	}
	return false
}

// Mode is the mode of an [AuditEvent]'s chain: live or test (sandbox). A
// credential acts in one mode only, given by its key or its JWT.
type Mode string

// Modes.
const (
	ModeLive Mode = "live" // live data
	ModeTest Mode = "test" // sandbox data, reached with sk_test_ and pk_test_ keys
)

// Valid reports whether m is ModeLive or ModeTest.
func (m Mode) Valid() bool { return m == ModeLive || m == ModeTest }

// FieldLocation is where a [FieldError]'s field is.
type FieldLocation string

// Field locations.
const (
	LocationBody   FieldLocation = "body"   // Field is a JSON pointer into the body, e.g. "/name"
	LocationQuery  FieldLocation = "query"  // Field is a query parameter
	LocationPath   FieldLocation = "path"   // Field is a path parameter
	LocationHeader FieldLocation = "header" // Field is a header
)

// Valid reports whether l is one of the locations above.
func (l FieldLocation) Valid() bool {
	return l == LocationBody || l == LocationQuery || l == LocationPath || l == LocationHeader
}
