package apikey

import (
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Credits are a key's usage credits (issue 22): every verify of the key that
// would otherwise be VALID spends its cost from Remaining, in the key store
// (store.Repository's SpendCredits), never below zero.
type Credits struct {
	// Remaining is what is left as of RefilledAt's boundary: read it through
	// At, which applies a refill that is due.
	Remaining int64
	// Refill puts Remaining back to its Amount at every boundary; nil: never.
	Refill *CreditRefill
	// RefilledAt is when Remaining was last set (by a create, an update or a
	// refill), in whole seconds: a refill is due once a boundary passes it.
	RefilledAt time.Time
}

// CreditRefill is how a key's credits come back.
type CreditRefill struct {
	Amount   int64
	Interval string // RefillDaily or RefillMonthly
	// Day is the day of the month of a monthly refill (1..31, clamped to
	// the month's last day); 0 for daily refills.
	Day int
}

// Refill intervals, as the spec spells them.
const (
	RefillDaily   = "daily"
	RefillMonthly = "monthly"
)

// MaxCredits bounds a key's credits and a refill's amount (the spec's
// Credits.remaining, CreditRefill.amount, credits_add); MaxCost a verify's cost.
const (
	MaxCredits = 1_000_000_000_000
	MaxCost    = 1_000_000
)

// ErrDailyRefillDay is a refill day on a daily refill (42208).
var ErrDailyRefillDay = errors.New("refill.day is only for monthly refills")

// ParseCredits checks credits as sent and returns them as set at now.
func ParseCredits(remaining int64, refill *CreditRefill, now time.Time) (*Credits, error) {
	if remaining < 0 || remaining > MaxCredits {
		return nil, fmt.Errorf("remaining must be 0 to %d", MaxCredits)
	}
	c := &Credits{Remaining: remaining, RefilledAt: now.UTC().Truncate(time.Second)}
	if refill == nil {
		return c, nil
	}
	r := *refill
	if r.Amount < 1 || r.Amount > MaxCredits {
		return nil, fmt.Errorf("refill.amount must be 1 to %d", MaxCredits)
	}
	switch r.Interval {
	case RefillDaily:
		if r.Day != 0 {
			return nil, ErrDailyRefillDay
		}
	case RefillMonthly:
		if r.Day == 0 {
			r.Day = 1
		}
		if r.Day < 1 || r.Day > 31 {
			return nil, errors.New("refill.day must be 1 to 31")
		}
	default:
		return nil, fmt.Errorf("refill.interval %q: want daily or monthly", r.Interval)
	}
	c.Refill = &r
	return c, nil
}

// Boundary is the last refill boundary at or before now: 00:00 UTC of now's
// day (daily), or of the refill's day this month if it has come, else of
// that day last month (monthly; a day past a month's end is its last day).
func (r *CreditRefill) Boundary(now time.Time) time.Time {
	now = now.UTC()
	y, m, d := now.Date()
	if r.Interval == RefillDaily {
		return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
	}
	if day := min(r.Day, daysIn(y, m)); day <= d {
		return time.Date(y, m, day, 0, 0, 0, 0, time.UTC)
	}
	py, pm := y, m-1
	if pm == 0 {
		py, pm = y-1, time.December
	}
	return time.Date(py, pm, min(r.Day, daysIn(py, pm)), 0, 0, 0, 0, time.UTC)
}

func daysIn(y int, m time.Month) int { return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day() }

// Due reports whether a refill is due at now: a boundary passed since
// RefilledAt.
func (c *Credits) Due(now time.Time) bool {
	return c.Refill != nil && c.Refill.Boundary(now).After(c.RefilledAt)
}

// At is c as of now: a refill that is due applied (not written: the next
// spend writes it). nil for nil.
func (c *Credits) At(now time.Time) *Credits {
	if c == nil {
		return nil
	}
	out := *c
	if c.Due(now) {
		out.Remaining, out.RefilledAt = c.Refill.Amount, now.UTC().Truncate(time.Second)
	}
	return &out
}

// Spend decides a spend of cost at now, the rule both stores apply to the
// credits they read from the key's row, holding it (PostgreSQL: FOR
// UPDATE; SQLite: a unit of its only writer): a refill that is due first
// (At), then cost only while enough is left (cost 0 checks, spends
// nothing). after is c as of now with the spend made if ok (a refused
// spend leaves At's credits: what the row holds, a due refill applied only
// when read); the store writes after only if ok. c must not be nil.
func (c *Credits) Spend(cost int64, now time.Time) (after *Credits, ok bool) {
	after = c.At(now)
	if cost > after.Remaining {
		return after, false
	}
	after.Remaining -= cost
	return after, true
}

// Clone is a copy of c that shares nothing with it (its refill included);
// nil for nil. The caches keep clones, so that a caller changing a key's
// credits in place changes no cached copy.
func (c *Credits) Clone() *Credits {
	if c == nil {
		return nil
	}
	out := *c
	if c.Refill != nil {
		r := *c.Refill
		out.Refill = &r
	}
	return &out
}

// Effective is what is left at now (At's Remaining).
func (c *Credits) Effective(now time.Time) int64 { return c.At(now).Remaining }

// shorter reports whether interval a refills more often than b.
func shorter(a, b string) bool { return a == RefillDaily && b == RefillMonthly }

// CreditsWithin reports whether a key holding inner (as of now: At) can
// never have more credits than one holding outer, the rule-24 bound: no
// more remaining, and a refill only under one of outer's, of no larger
// amount and no shorter interval. Outer nil bounds nothing; inner nil (no
// credits: unbounded use) is within no outer.
func CreditsWithin(inner, outer *Credits) bool {
	switch {
	case outer == nil:
		return true
	case inner == nil || inner.Remaining > outer.Remaining:
		return false
	case inner.Refill == nil:
		return true
	case outer.Refill == nil:
		return false
	}
	return inner.Refill.Amount <= outer.Refill.Amount && !shorter(inner.Refill.Interval, outer.Refill.Interval)
}

func (r *CreditRefill) String() string {
	s := strconv.FormatInt(r.Amount, 10) + "/" + r.Interval
	if r.Interval == RefillMonthly && r.Day != 1 {
		s += "@" + strconv.Itoa(r.Day)
	}
	return s
}

func (c *Credits) String() string {
	if c == nil {
		return "none"
	}
	s := strconv.FormatInt(c.Remaining, 10)
	if c.Refill != nil {
		s += ", refill " + c.Refill.String()
	}
	return s
}
