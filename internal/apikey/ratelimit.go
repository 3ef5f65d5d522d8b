package apikey

import (
	"fmt"
	"strconv"
	"time"
)

// RateLimit is a key's own request budget (issue 22): at most Limit
// requests per Window, replacing its mode's default for that key.
type RateLimit struct {
	Limit  int
	Window time.Duration
}

// Clone is a copy of r; nil for nil (see Credits.Clone).
func (r *RateLimit) Clone() *RateLimit {
	if r == nil {
		return nil
	}
	out := *r
	return &out
}

// Bounds of a per-key rate limit (the spec's RateLimit).
const (
	MaxRateLimit = 1_000_000
	MinWindow    = time.Second
	MaxWindow    = 24 * time.Hour
)

var windowUnits = []struct {
	suffix byte
	d      time.Duration
}{{'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}, {'s', time.Second}}

// ParseRateLimit checks a rate limit as sent: limit 1 to MaxRateLimit, the
// window a whole number of s, m, h or d between MinWindow and MaxWindow.
func ParseRateLimit(limit int, window string) (*RateLimit, error) {
	if limit < 1 || limit > MaxRateLimit {
		return nil, fmt.Errorf("limit must be 1 to %d", MaxRateLimit)
	}
	if len(window) < 2 {
		return nil, fmt.Errorf("window %q: want a whole number of s, m, h or d, such as 1m", window)
	}
	n, err := strconv.Atoi(window[:len(window)-1])
	var unit time.Duration
	for _, u := range windowUnits {
		if u.suffix == window[len(window)-1] {
			unit = u.d
		}
	}
	if err != nil || n < 1 || unit == 0 {
		return nil, fmt.Errorf("window %q: want a whole number of s, m, h or d, such as 1m", window)
	}
	if n > int(MaxWindow/unit) {
		return nil, fmt.Errorf("window %q: at most 1d", window)
	}
	return &RateLimit{Limit: limit, Window: time.Duration(n) * unit}, nil
}

// WindowString is the window as answers show it: in the largest whole unit.
func (r *RateLimit) WindowString() string {
	for _, u := range windowUnits {
		if r.Window%u.d == 0 {
			return strconv.FormatInt(int64(r.Window/u.d), 10) + string(u.suffix)
		}
	}
	return strconv.FormatInt(int64(r.Window/time.Second), 10) + "s"
}

func (r *RateLimit) String() string { return strconv.Itoa(r.Limit) + "/" + r.WindowString() }

// RateWithin reports whether a key limited to inner can make no more
// requests over time than one limited to outer (nil: no per-key limit):
// compared as rates, limit/window. Outer nil bounds nothing; a key without
// a per-key limit (inner nil) is bounded by its mode's default only, which
// no per-key limit bounds, so it is within no outer limit.
func RateWithin(inner, outer *RateLimit) bool {
	if outer == nil {
		return true
	}
	if inner == nil {
		return false
	}
	// Whole seconds: windows are whole seconds, and limit × seconds stays
	// below 2^37.
	return int64(inner.Limit)*int64(outer.Window/time.Second) <= int64(outer.Limit)*int64(inner.Window/time.Second)
}
