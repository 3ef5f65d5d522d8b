package client

import "github.com/hsrcpay/apikeys/client/oapi"

// The spec's types. They are aliases of the generated ones, which carry Go
// names too (ID, AccountID, LastUsedIP: the generator's initialism-aware
// normalizer, client/oapi/oapi-codegen.yaml).

// APIKey is a key as created or regenerated: its Key field holds the
// plaintext secret, which the API never shows again.
//
// Its Status and Type fields have generated types of their own; convert them
// to compare with this package's constants:
// client.KeyType(key.Type) == client.TypePublishable.
type APIKey = oapi.APIKey

// APIKeyView is a key as read, listed, updated or deleted: everything but the
// secret, which KeyHint recognises (e.g. "sk_test_…3kP9").
type APIKeyView = oapi.APIKeyView

// CreateAPIKeyRequest is a new key's name, permissions, and optional expiry
// and metadata.
type CreateAPIKeyRequest = oapi.CreateAPIKeyRequest

// UpdateAPIKeyRequest holds the fields to change; nil fields keep their value.
// [Disable], [Enable] and [Rename] build common ones; [Ptr] helps with the rest.
type UpdateAPIKeyRequest = oapi.UpdateAPIKeyRequest

// Permissions maps a resource to its actions:
// client.Permissions{"payment": {"create", "read"}} grants payment:create and
// payment:read.
type Permissions = oapi.Permissions

// Metadata is free-form string pairs for the caller's own use: at most 20
// keys of up to 40 characters, values up to 500.
type Metadata = oapi.Metadata

// CreatedBy says who created a key (or made the change an audit event
// records), and in which request.
type CreatedBy = oapi.CreatedBy

// FieldError is one reason a request failed validation (code
// [CodeValidationFailed]); [Error.Fields] lists them.
type FieldError = oapi.FieldError

// AuditEvent is one change to a key, hash-chained per account and mode; see
// [VerifyAuditChain].
type AuditEvent = oapi.AuditEvent

// APIKeyPage is one page of [Client.ListAPIKeysPage]: NextCursor fetches the
// next while HasMore.
type APIKeyPage = oapi.APIKeyList

// AuditEventPage is one page of [Client.ListAuditEventsPage]: NextCursor
// fetches the next while HasMore.
type AuditEventPage = oapi.AuditEventList

// KeyStatus is the status of an [APIKeyView], and a filter of
// [ListAPIKeysOptions].
type KeyStatus = oapi.APIKeyViewStatus

// Key statuses.
const (
	StatusActive   KeyStatus = "ACTIVE"   // the key authenticates
	StatusInactive KeyStatus = "INACTIVE" // the key was switched off (Disable); Enable switches it back on
	StatusExpired  KeyStatus = "EXPIRED"  // the key is past its expires_at
)

// KeyType is the type of an [APIKeyView], and a filter of [ListAPIKeysOptions].
type KeyType = oapi.APIKeyViewType

// Key types.
const (
	TypeSecret      KeyType = "SECRET"      // a key for servers; it may manage keys if its permissions say so
	TypePublishable KeyType = "PUBLISHABLE" // a key safe in browsers; it never manages keys
)

// UpdateStatus is the status an [UpdateAPIKeyRequest] sets; [Disable] and
// [Enable] set it for you.
type UpdateStatus = oapi.UpdateAPIKeyRequestStatus

// Statuses an update sets.
const (
	UpdateStatusActive   UpdateStatus = "ACTIVE"   // switch the key back on
	UpdateStatusInactive UpdateStatus = "INACTIVE" // switch the key off at once
)

// CreatedByKind is the kind of principal in a [CreatedBy]: a key, a person's
// JWT or the platform.
type CreatedByKind = oapi.CreatedByKind

// Kinds of creator; CreatedBy.ID is then a key id, a JWT subject, or
// "bootstrap".
const (
	CreatedByKey      CreatedByKind = "key"      // an API key; Id is its key id
	CreatedByJWT      CreatedByKind = "jwt"      // a person; Id is the token's sub
	CreatedByPlatform CreatedByKind = "platform" // provisioned by the service (managed keys); Id is "bootstrap"
)

// AuditAction is what an [AuditEvent] records, and a filter of
// [ListAuditEventsOptions].
type AuditAction = oapi.AuditAction

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

// Mode is the mode of an [AuditEvent]'s chain: live or test (sandbox). A
// credential acts in one mode only, given by its key or its JWT.
type Mode = oapi.AuditEventMode

// Modes.
const (
	ModeLive Mode = "live" // live data
	ModeTest Mode = "test" // sandbox data, reached with sk_test_ and pk_test_ keys
)

// FieldLocation is where a [FieldError]'s field is.
type FieldLocation = oapi.FieldErrorLocation

// Field locations.
const (
	LocationBody   FieldLocation = "body"   // Field is a JSON pointer into the body, e.g. "/name"
	LocationQuery  FieldLocation = "query"  // Field is a query parameter
	LocationPath   FieldLocation = "path"   // Field is a path parameter
	LocationHeader FieldLocation = "header" // Field is a header
)
