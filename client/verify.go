package client

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client/oapi"
)

// VerifyCode is the verdict of [Client.VerifyKey]: [VerifyValid], or why the
// key does not do what was asked. New codes may be added: treat a code you do
// not know as a key that does not work (Verification.Valid is false).
type VerifyCode string

// Verdicts, in the order the API decides them (after NOT_FOUND, those about
// a key that does not work; then those about a key that works).
const (
	VerifyValid                   VerifyCode = "VALID"                    // the key works and holds every permission asked for
	VerifyNotFound                VerifyCode = "NOT_FOUND"                // no such key, no key at all, or a key of an account or mode the caller cannot see
	VerifyRevoked                 VerifyCode = "REVOKED"                  // the key was deleted, or this is a replaced secret whose grace period ended
	VerifyDisabled                VerifyCode = "DISABLED"                 // the key is switched off (it may be switched back on)
	VerifyExpired                 VerifyCode = "EXPIRED"                  // the key is past its expires_at
	VerifyRateLimited             VerifyCode = "RATE_LIMITED"             // the key works but is over its own or its account's budget: RetryAfter
	VerifyInsufficientPermissions VerifyCode = "INSUFFICIENT_PERMISSIONS" // the key works but lacks MissingPermissions
	VerifyNetworkNotAllowed       VerifyCode = "NETWORK_NOT_ALLOWED"      // the key is restricted to networks and ClientIP was absent or outside them
	VerifyUsageExceeded           VerifyCode = "USAGE_EXCEEDED"           // the key has fewer credits left than the Cost (nothing spent): CreditsRemaining
)

// VerifiedMode is the mode of a key [Client.VerifyKey] found: always the
// caller's (the other mode's keys are NOT_FOUND).
type VerifiedMode string

// Modes of a verified key.
const (
	VerifiedLive VerifiedMode = "live" // a live key (sk_live_, pk_live_)
	VerifiedTest VerifiedMode = "test" // a sandbox key (sk_test_, pk_test_)
)

// Valid reports whether c is one of the verdicts above (a newer server may
// send others).
func (c VerifyCode) Valid() bool {
	switch c {
	case VerifyValid, VerifyNotFound, VerifyRevoked, VerifyDisabled, VerifyExpired, VerifyRateLimited, VerifyInsufficientPermissions, VerifyNetworkNotAllowed, VerifyUsageExceeded:
		return true
	}
	return false
}

// Valid reports whether m is VerifiedLive or VerifiedTest.
func (m VerifiedMode) Valid() bool { return m == VerifiedLive || m == VerifiedTest }

// Verification is what [Client.VerifyKey] says about a key. Valid and Code
// are always set; the key's details only when the API found it in one of the
// caller's accounts in the caller's mode (Found), never for VerifyNotFound.
type Verification struct {
	// Valid is true when the key works now and holds every permission asked
	// for (Code is VerifyValid).
	Valid bool
	// Code is the verdict.
	Code VerifyCode
	// ID is the key's id; "" when not found.
	ID string
	// AccountID is the account the key belongs to.
	AccountID string
	// Mode is the key's mode, the caller's.
	Mode VerifiedMode
	// Type is TypeSecret or TypePublishable.
	Type KeyType
	// Managed is true for platform-provisioned keys.
	Managed bool
	// Permissions are all the key holds.
	Permissions Permissions
	// ExpiresAt is when the key stops working; nil when it never does.
	ExpiresAt *time.Time
	// InGracePeriod is true when the key presented is the key's replaced
	// secret, which works only until GracePeriodEndsAt: its holder should
	// move to the current secret.
	InGracePeriod bool
	// GracePeriodEndsAt is when that replaced secret stops working.
	GracePeriodEndsAt *time.Time
	// MissingPermissions are the permissions asked for that the key lacks
	// ("resource:action", sorted), for VerifyInsufficientPermissions.
	MissingPermissions []string
	// RetryAfter is how long until the key's budget has room again, for
	// VerifyRateLimited.
	RetryAfter time.Duration
	// CreditsRemaining is what a key with credits has left after this
	// verify (VerifyValid: spent; VerifyUsageExceeded: nothing spent); nil
	// for keys without credits and other verdicts.
	CreditsRemaining *int64
}

// Found reports whether the API found the key among the caller's: the
// details are then set.
func (v *Verification) Found() bool { return v.ID != "" }

// VerifyOption adjusts a [Client.VerifyKey] call.
type VerifyOption func(*verifySettings)

type verifySettings struct {
	perms    Permissions
	clientIP string
	cost     *int
	err      error
}

// maxCost is the largest cost a verify may spend.
const maxCost = 1_000_000

// Cost is what the verify spends from a key with credits when it is
// otherwise VerifyValid: 0 to 1000000 (without Cost: 1; 0 checks without
// spending). Keys without credits ignore it. A cost out of range makes
// VerifyKey return an [*ArgumentError] without sending anything.
func Cost(n int) VerifyOption {
	return func(s *verifySettings) {
		if n < 0 || n > maxCost {
			s.err = &ArgumentError{Name: "Cost", Value: n, Reason: fmt.Sprintf("want 0 to %d credits", maxCost)}
			return
		}
		s.cost = &n
	}
}

// ClientIP gives the address of the client that presented the key to your
// service (as your own trusted-proxy rule yields it): a key restricted to
// networks is VerifyNetworkNotAllowed when it is absent or outside them. An
// address that does not parse makes VerifyKey return an [*ArgumentError]
// without sending anything.
func ClientIP(addr string) VerifyOption {
	return func(s *verifySettings) {
		if _, err := netip.ParseAddr(addr); err != nil || strings.Contains(addr, "%") {
			s.err = &ArgumentError{Name: "ClientIP", Value: addr, Reason: "want an IPv4 or IPv6 address, such as 203.0.113.7"}
			return
		}
		s.clientIP = addr
	}
}

// RequirePermissions asks whether the key also holds each permission, given
// as "resource:action" (split at the last colon: "account:api:key:read" is
// action "read" on resource "account:api:key"). The verdict is then
// VerifyInsufficientPermissions, with MissingPermissions, when the key works
// but lacks some. A permission the catalog does not know makes the API
// answer ErrUnprocessable (CodeUnknownPermission); one that is not
// "resource:action" makes VerifyKey return an [*ArgumentError] without
// sending anything.
func RequirePermissions(perms ...string) VerifyOption {
	return func(s *verifySettings) {
		if s.perms == nil {
			s.perms = Permissions{}
		}
		for _, p := range perms {
			i := strings.LastIndexByte(p, ':')
			if i <= 0 || i == len(p)-1 {
				s.err = &ArgumentError{Name: "RequirePermissions", Value: p, Reason: "want resource:action, such as payment:create"}
				return
			}
			res, action := p[:i], p[i+1:]
			if !slices.Contains(s.perms[res], action) {
				s.perms[res] = append(s.perms[res], action)
			}
		}
	}
}

// maxVerifiedKeyLen is the longest key the API's verify accepts.
const maxVerifiedKeyLen = 512

// VerifyKey asks the API whether key (an sk_ or pk_ key another party
// presented to your service) works now, and with [RequirePermissions]
// whether it holds what you need: the way an HSRCPAY service authenticates
// its callers' keys. The client's own token needs account:api:key:verify.
//
// Every verdict about the key comes back as a *Verification with a nil
// error, a key that does not work included (Valid false, Code says why); an
// error is about the request itself: ErrUnauthorized, ErrForbidden (the
// token lacks account:api:key:verify, or is a publishable key or a replaced
// secret), ErrUnprocessable (an unknown permission), ErrRateLimited (the
// token's own budget, not the key's), ErrServer, a transport failure. Keys of
// accounts the token does not act on, and of the other mode, are
// VerifyNotFound, exactly as keys that do not exist.
//
// A key that works spends its own budgets as if it had called the API, and
// counts as used. VerifyKey changes nothing, so it is retried after a timeout
// or a broken connection like a GET (see WithRetries). An empty key, or one
// longer than 512 characters (no key is: a JWT is not a key), is an
// [*ArgumentError], found before sending.
func (c *Client) VerifyKey(ctx context.Context, key string, opts ...VerifyOption) (*Verification, error) {
	if err := c.ready(); err != nil {
		return nil, err
	}
	if err := requireID("key", key); err != nil {
		return nil, err
	}
	if len(key) > maxVerifiedKeyLen {
		return nil, &ArgumentError{Name: "key", Value: fmt.Sprintf("%.12s… (%d characters)", key, len(key)),
			Reason: "a key is at most 512 characters; pass the sk_ or pk_ key your caller presented"}
	}
	var s verifySettings
	for _, o := range opts {
		if o != nil {
			o(&s)
		}
		if s.err != nil {
			return nil, s.err
		}
	}
	body := oapi.VerifyAPIKeyRequest{Key: key}
	if s.perms != nil {
		body.Permissions = (*oapi.Permissions)(&s.perms)
	}
	if s.clientIP != "" {
		body.ClientIP = &s.clientIP
	}
	body.Cost = s.cost
	res, err := c.raw.VerifyAPIKey(repeatable(ctx), body) //nolint:bodyclose // result (or its caller) reads and closes the body
	r, err := result[oapi.VerifyAPIKeyResult](c, res, err)
	if err != nil {
		return nil, err
	}
	return verification(r), nil
}

// verification turns the generated result into Go values (zero when absent).
func verification(r *oapi.VerifyAPIKeyResult) *Verification {
	v := &Verification{Valid: r.Valid, Code: VerifyCode(r.Code), ExpiresAt: r.ExpiresAt, GracePeriodEndsAt: r.GracePeriodEndsAt}
	if r.ID != nil {
		v.ID = *r.ID
	}
	if r.AccountID != nil {
		v.AccountID = *r.AccountID
	}
	if r.Mode != nil {
		v.Mode = VerifiedMode(*r.Mode)
	}
	if r.Type != nil {
		v.Type = KeyType(*r.Type)
	}
	if r.Managed != nil {
		v.Managed = *r.Managed
	}
	if r.Permissions != nil {
		v.Permissions = Permissions(*r.Permissions)
	}
	if r.InGracePeriod != nil {
		v.InGracePeriod = *r.InGracePeriod
	}
	if r.MissingPermissions != nil {
		v.MissingPermissions = *r.MissingPermissions
	}
	if r.RetryAfterSeconds != nil {
		v.RetryAfter = time.Duration(*r.RetryAfterSeconds) * time.Second
	}
	v.CreditsRemaining = r.CreditsRemaining
	return v
}
