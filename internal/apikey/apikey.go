// Package apikey holds the domain types of the service: keys, the modes that
// keep live and sandbox data apart, and the actors that change keys. It
// depends on nothing, so every other package may use it.
package apikey

import (
	"net/netip"
	"time"
)

// Mode selects the live or sandbox repository.
type Mode string

const (
	Live    Mode = "live"
	Sandbox Mode = "test"
)

// Modes lists both, live first.
var Modes = []Mode{Live, Sandbox}

const (
	TypeSecret      = "SECRET"
	TypePublishable = "PUBLISHABLE"

	StatusActive   = "ACTIVE"
	StatusInactive = "INACTIVE"
)

// Key is a stored API key. SecretHash is all that is kept of the secret.
type Key struct {
	ID        string
	AccountID string
	Name      string
	// NameKey is what Name must be unique by among the account's live keys
	// (namekey.Key(Name)); the stores compute it on every write, so that it
	// always follows Name.
	NameKey    string
	Type       string
	SecretHash []byte
	// KeyHint is what may be shown of the secret (keys.Hint); "" for keys
	// from before hints were kept.
	KeyHint string
	// PrevSecretHash is the replaced secret during a rotation's grace period;
	// it authenticates until PrevSecretExpiresAt.
	PrevSecretHash      []byte
	PrevSecretExpiresAt *time.Time
	Permissions         map[string][]string
	Metadata            map[string]string
	Status              string
	Managed             bool
	Deleted             bool
	LastUsedAt          *time.Time
	LastUsedIP          *string
	ExpiresAt           *time.Time
	CreatedAt           time.Time
	UpdatedAt           time.Time
	CreatedBy           Actor
	// AllowedNetworks are the client addresses the key works from,
	// canonical (ParseNetworks); nil: any address.
	AllowedNetworks []netip.Prefix
	// RateLimit is the key's own request budget; nil: its mode's default.
	RateLimit *RateLimit
	// Credits are the key's usage credits as stored (read them through
	// Credits.At); nil: none, verifies spend nothing.
	Credits *Credits
}

// InGrace reports whether the replaced secret (PrevSecretHash) still
// authenticates at now: its grace period has not ended.
func (k *Key) InGrace(now time.Time) bool {
	return k.PrevSecretExpiresAt != nil && now.Before(*k.PrevSecretExpiresAt)
}

// Actor is who made a change: an API key, a person (JWT) or the platform.
type Actor struct {
	Kind      string // ActorKey, ActorJWT or ActorPlatform
	ID        string // key id, JWT subject, or what the platform did ("bootstrap")
	RequestID string // the request that made the change; "" outside a request
}

// Actor kinds.
const (
	ActorKey      = "key"
	ActorJWT      = "jwt"
	ActorPlatform = "platform"
)
