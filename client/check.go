package client

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"
)

// The constraints of openapi.yaml's request schemas that a request built in
// Go can break, checked before sending so that the mistake is an
// *ArgumentError naming the field rather than a 400 from the server (or, for
// a nil Permissions, a JSON null the server refuses). Only what the schemas
// require: the rules the server decides (the catalog of permissions, unique
// names, expiry bounds) stay the server's. TestRequestChecksMatchTheSpec
// holds these numbers equal to the spec's.
const (
	maxNameLen          = 100 // CreateApiKeyRequest.name, UpdateApiKeyRequest.name: maxLength
	maxPermResources    = 32  // Permissions: maxProperties
	maxPermActions      = 16  // Permissions' arrays: maxItems
	maxPermActionLen    = 32  // Permissions' actions: maxLength
	maxMetadataKeys     = 20  // Metadata: maxProperties
	maxMetadataValueLen = 500 // Metadata's values: maxLength
	maxNetworks         = 32  // AllowedNetworks: maxItems
	maxRateLimit        = 1_000_000
	maxCredits          = 1_000_000_000_000 // Credits.remaining, CreditRefill.amount, credits_add
)

var (
	// namePattern is the names' pattern: no C0 control character, no DEL.
	namePattern = regexp.MustCompile(`^[^\x00-\x1f\x7f]+$`)
	// windowPattern is RateLimit.window's pattern (the 1 day bound is the server's).
	windowPattern = regexp.MustCompile(`^[1-9][0-9]{0,5}[smhd]$`)
	// actionPattern is the pattern of a permission's actions.
	actionPattern = regexp.MustCompile(`^[a-z][a-z_]*$`)
)

func argError(name string, value any, format string, args ...any) error {
	return &ArgumentError{Name: name, Value: value, Reason: fmt.Sprintf(format, args...)}
}

// check refuses what the spec's CreateApiKeyRequest does not allow.
func (r CreateAPIKeyRequest) check() error {
	if err := checkName("CreateAPIKeyRequest.Name", r.Name); err != nil {
		return err
	}
	if r.Permissions == nil {
		return argError("CreateAPIKeyRequest.Permissions", r.Permissions,
			"is required: list what the key may do, e.g. client.Permissions{\"payment\": {\"read\"}}, or client.Permissions{} for nothing")
	}
	if err := checkPermissions("CreateAPIKeyRequest.Permissions", r.Permissions); err != nil {
		return err
	}
	if err := checkMetadata("CreateAPIKeyRequest.Metadata", r.Metadata); err != nil {
		return err
	}
	if err := checkNetworks("CreateAPIKeyRequest.AllowedNetworks", r.AllowedNetworks); err != nil {
		return err
	}
	if err := checkRateLimit("CreateAPIKeyRequest.RateLimit", r.RateLimit); err != nil {
		return err
	}
	return checkCredits("CreateAPIKeyRequest.Credits", r.Credits)
}

// checkCredits refuses what Credits does not allow (the rule-24 bounds and
// a day on a daily refill are the server's).
func checkCredits(field string, c *Credits) error {
	switch {
	case c == nil:
		return nil
	case c.Remaining < 0 || c.Remaining > maxCredits:
		return argError(field+".Remaining", c.Remaining, "want 0 to %d credits", int64(maxCredits))
	case c.Refill == nil:
		return nil
	case c.Refill.Amount < 1 || c.Refill.Amount > maxCredits:
		return argError(field+".Refill.Amount", c.Refill.Amount, "want 1 to %d credits", int64(maxCredits))
	case !c.Refill.Interval.Valid():
		return argError(field+".Refill.Interval", c.Refill.Interval, "want client.RefillDaily or client.RefillMonthly")
	case c.Refill.Day != nil && (*c.Refill.Day < 1 || *c.Refill.Day > 31):
		return argError(field+".Refill.Day", *c.Refill.Day, "want a day of the month, 1 to 31")
	}
	return nil
}

// check refuses what the spec's UpdateApiKeyRequest does not allow.
func (r UpdateAPIKeyRequest) check() error {
	if r.Name == nil && r.Metadata == nil && r.Status == nil && r.ExpiresAt == nil && r.AllowedNetworks == nil && r.RateLimit == nil &&
		r.Credits == nil && r.CreditsAdd == nil {
		return argError("UpdateAPIKeyRequest", "{}", "set at least one field (Name, Metadata, Status, ExpiresAt, AllowedNetworks, RateLimit, Credits or CreditsAdd)")
	}
	if a := r.CreditsAdd; a != nil && (*a < 1 || *a > maxCredits) {
		return argError("UpdateAPIKeyRequest.CreditsAdd", *a, "want 1 to %d credits", int64(maxCredits))
	}
	if r.Name != nil {
		if err := checkName("UpdateAPIKeyRequest.Name", *r.Name); err != nil {
			return err
		}
	}
	if r.Status != nil && !r.Status.Valid() {
		return argError("UpdateAPIKeyRequest.Status", string(*r.Status), "want UpdateStatusActive or UpdateStatusInactive")
	}
	if err := checkMetadata("UpdateAPIKeyRequest.Metadata", r.Metadata); err != nil {
		return err
	}
	if err := checkNetworks("UpdateAPIKeyRequest.AllowedNetworks", r.AllowedNetworks); err != nil {
		return err
	}
	if err := checkRateLimit("UpdateAPIKeyRequest.RateLimit", r.RateLimit); err != nil {
		return err
	}
	return checkCredits("UpdateAPIKeyRequest.Credits", r.Credits)
}

// checkRateLimit refuses what RateLimit does not allow.
func checkRateLimit(field string, r *RateLimit) error {
	switch {
	case r == nil:
		return nil
	case r.Limit < 1 || r.Limit > maxRateLimit:
		return argError(field+".Limit", r.Limit, "want 1 to %d requests per window", maxRateLimit)
	case !windowPattern.MatchString(r.Window):
		return argError(field+".Window", r.Window, "want a whole number of s, m, h or d, such as 1m (at most 1d)")
	}
	return nil
}

// checkNetworks refuses what AllowedNetworks does not allow: more than 32,
// one twice (uniqueItems), one that is no IP address or CIDR prefix.
func checkNetworks(field string, n *[]string) error {
	if n == nil {
		return nil
	}
	if len(*n) > maxNetworks {
		return argError(field, len(*n), "has %d networks; at most %d", len(*n), maxNetworks)
	}
	seen := make(map[string]bool, len(*n))
	for _, s := range *n {
		_, perr := netip.ParsePrefix(s)
		a, aerr := netip.ParseAddr(s)
		switch {
		case perr != nil && (aerr != nil || a.Zone() != ""):
			return argError(field, s, "want an IP address or CIDR prefix, such as 10.0.0.0/8 or 2001:db8::1")
		case seen[s]:
			return argError(field, s, "lists this network twice")
		}
		seen[s] = true
	}
	return nil
}

func checkName(field, name string) error {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return argError(field, name, "is required: 1 to %d characters", maxNameLen)
	case n > maxNameLen:
		return argError(field, name, "is %d characters long; at most %d", n, maxNameLen)
	case !namePattern.MatchString(name):
		return argError(field, name, "must not contain control characters (U+0000 to U+001F, U+007F)")
	}
	return nil
}

func checkPermissions(field string, p Permissions) error {
	if len(p) > maxPermResources {
		return argError(field, len(p), "has %d resources; at most %d", len(p), maxPermResources)
	}
	resources := make([]string, 0, len(p))
	for res := range p {
		resources = append(resources, res)
	}
	slices.Sort(resources) // the first error is the same on every call
	for _, res := range resources {
		actions := p[res]
		name := fmt.Sprintf("%s[%q]", field, res)
		if len(actions) > maxPermActions {
			return argError(name, actions, "has %d actions; at most %d", len(actions), maxPermActions)
		}
		seen := make(map[string]bool, len(actions))
		for _, a := range actions {
			switch {
			case len(a) > maxPermActionLen:
				return argError(name, a, "an action is at most %d characters", maxPermActionLen)
			case !actionPattern.MatchString(a):
				return argError(name, a, "an action is lower-case letters and underscores, starting with a letter (e.g. \"read\")")
			case seen[a]:
				return argError(name, a, "lists this action twice")
			}
			seen[a] = true
		}
	}
	return nil
}

func checkMetadata(field string, m *Metadata) error {
	if m == nil {
		return nil
	}
	if len(*m) > maxMetadataKeys {
		return argError(field, len(*m), "has %d keys; at most %d", len(*m), maxMetadataKeys)
	}
	for k, v := range *m {
		switch {
		case utf8.RuneCountInString(v) > maxMetadataValueLen:
			return argError(fmt.Sprintf("%s[%q]", field, k), fmt.Sprintf("%.20s… (%d characters)", v, utf8.RuneCountInString(v)),
				"a value is at most %d characters", maxMetadataValueLen)
		case strings.ContainsRune(v, 0):
			return argError(fmt.Sprintf("%s[%q]", field, k), v, "a value must not contain U+0000")
		}
	}
	return nil
}
