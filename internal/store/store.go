// Package store defines how API keys are kept: one Repository per mode (live,
// sandbox) so the two never mix. Implementations live in subpackages.
package store

import (
	"context"
	"errors"
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
	ID         string
	AccountID  string
	Name       string
	Type       string
	SecretHash []byte
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

// Usage is one observed use of a key, flushed in batches.
type Usage struct {
	KeyID string
	At    time.Time
	IP    string
}

var (
	ErrNotFound       = errors.New("store: not found")
	ErrDuplicateName  = errors.New("store: an active key with this name exists")
	ErrAccountExists  = errors.New("store: account exists")
	ErrNoAccount      = errors.New("store: no such account")
	ErrDuplicateKeyID = errors.New("store: key id or secret collision")
)

// Store opens the repositories of both modes.
type Store interface {
	Repo(Mode) Repository
	// Ping checks that every repository is reachable.
	Ping(context.Context) error
	Close() error
}

// Repository holds one mode's accounts and keys.
type Repository interface {
	// CreateAccount returns ErrAccountExists if the id is taken.
	CreateAccount(ctx context.Context, id string, now time.Time) error
	AccountExists(ctx context.Context, id string) (bool, error)
	// InsertKey returns ErrDuplicateName when an active key of the account has
	// the name, and ErrNoAccount when the account does not exist.
	InsertKey(ctx context.Context, k *Key) error
	GetKey(ctx context.Context, id string) (*Key, error)
	// KeyBySecretHash finds a key by its current or previous secret's hash
	// (ErrNotFound if none); the caller tells which by comparing SecretHash.
	KeyBySecretHash(ctx context.Context, hash []byte) (*Key, error)
	// ListManagedKeys returns an account's managed keys.
	ListManagedKeys(ctx context.Context, accountID string) ([]*Key, error)
	// UpdateKey reads the key under a write lock, lets fn change it, and
	// writes it back atomically (previous secret included); an error from fn
	// aborts without writing.
	UpdateKey(ctx context.Context, id string, fn func(*Key) error) (*Key, error)
	// RecordUsage moves last_used_at/ip forward, never backward.
	RecordUsage(ctx context.Context, batch []Usage) error
}
