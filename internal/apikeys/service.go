// Package apikeys holds the use cases of the API-key service: create a
// custom key, regenerate a managed one, read, update and delete keys, verify
// a key for another service, provision an account's managed keys.
// Each runs in one unit of work of the store (store.Repository.InTx) and
// asks internal/policy, inside it, whether the caller may act. It speaks
// store types and apierr errors; HTTP lives in server/.
package apikeys

import (
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store"
)

// DefaultMaxActiveKeys is how many keys (managed ones included) an account may
// hold per mode that are neither deleted nor expired, unless configured.
const DefaultMaxActiveKeys = 500

// Options are the service's settings and optional collaborators.
type Options struct {
	// Usage overlays last uses not yet flushed on returned keys (optional).
	Usage *auth.UsageTracker
	// Now is the clock (default time.Now).
	Now func() time.Time
	// MaxActiveKeys caps an account's active keys per mode (default DefaultMaxActiveKeys).
	MaxActiveKeys int
	// Changed is told of every key whose secret (current or previous),
	// status, deleted flag, expiry or permissions a use case changed, once
	// the change committed (never before, never for a rollback): credential
	// caches drop the key (optional).
	Changed func(mode apikey.Mode, keyID string)
	// Keys resolves key tokens for Verify (the server's auth.Authenticator);
	// without it Verify fails. The other use cases do not need it.
	Keys KeyResolver
}

// Service implements the use cases over a store.
type Service struct {
	store         store.Store
	catalog       perm.Catalog
	usage         *auth.UsageTracker
	now           func() time.Time
	maxActiveKeys int
	onChanged     func(mode apikey.Mode, keyID string)
	keys          KeyResolver
}

// New is the one way to build the service.
func New(st store.Store, catalog perm.Catalog, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxActiveKeys <= 0 {
		o.MaxActiveKeys = DefaultMaxActiveKeys
	}
	return &Service{store: st, catalog: catalog, usage: o.Usage, now: o.Now, maxActiveKeys: o.MaxActiveKeys, onChanged: o.Changed, keys: o.Keys}
}

// changed tells Options.Changed about keys whose unit of work has committed.
// Callers call it only after InTx returned nil: announcing a change that then
// rolls back would be harmless for a cache, but announcing one before it
// commits would let a replica re-read and cache the old row in between.
func (s *Service) changed(mode apikey.Mode, ids ...string) {
	if s.onChanged == nil {
		return
	}
	for _, id := range ids {
		s.onChanged(mode, id)
	}
}

// Now is the service's clock, for rendering what it returns.
func (s *Service) Now() time.Time { return s.now() }

// Issued is a key together with its plaintext secret, which exists only here.
type Issued struct {
	Key    *apikey.Key
	Mode   apikey.Mode
	Secret string
	// Reenabled says RotateManaged found the key (the managed secret key)
	// switched off and switched it back on before rotating it.
	Reenabled bool
}

// actor is who a principal is, for the records it leaves.
func actor(p *auth.Principal) apikey.Actor {
	if p.KeyID != "" {
		return apikey.Actor{Kind: apikey.ActorKey, ID: p.KeyID, RequestID: p.RequestID}
	}
	return apikey.Actor{Kind: apikey.ActorJWT, ID: strings.TrimPrefix(p.Subject, "jwt:"), RequestID: p.RequestID}
}

// overlayUsage shows a use that is still waiting to be flushed.
func (s *Service) overlayUsage(mode apikey.Mode, k *apikey.Key) {
	if s.usage == nil {
		return
	}
	if u, ok := s.usage.Pending(mode, k.ID); ok && (k.LastUsedAt == nil || u.At.After(*k.LastUsedAt)) {
		at, ip := u.At, u.IP
		k.LastUsedAt, k.LastUsedIP = &at, &ip
	}
}

func normalize(m map[string][]string) map[string][]string {
	out := make(map[string][]string, len(m))
	for k, v := range m {
		if v == nil {
			v = []string{}
		}
		out[k] = v
	}
	return out
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
