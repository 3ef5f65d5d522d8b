package store

import (
	"fmt"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// CreditColumns are how both stores keep a key's credits (migration 00014):
// Remaining nil for none; the refill's amount (0: none), interval and day;
// when Remaining was last set or refilled, in unix seconds.
type CreditColumns struct {
	Remaining      *int64
	RefillAmount   int64
	RefillInterval string
	RefillDay      int64
	RefilledAt     int64
}

// EncodeCredits is c as both stores keep it.
func EncodeCredits(c *apikey.Credits) CreditColumns {
	if c == nil {
		return CreditColumns{}
	}
	rem := c.Remaining
	out := CreditColumns{Remaining: &rem, RefilledAt: c.RefilledAt.Unix()}
	if r := c.Refill; r != nil {
		out.RefillAmount, out.RefillInterval, out.RefillDay = r.Amount, r.Interval, int64(r.Day)
	}
	return out
}

// Decode reads what EncodeCredits wrote; nil for none.
func (c CreditColumns) Decode() (*apikey.Credits, error) {
	if c.Remaining == nil {
		return nil, nil
	}
	out := &apikey.Credits{Remaining: *c.Remaining, RefilledAt: time.Unix(c.RefilledAt, 0).UTC()}
	if c.RefillAmount > 0 {
		if c.RefillInterval != apikey.RefillDaily && c.RefillInterval != apikey.RefillMonthly {
			return nil, fmt.Errorf("credits refill interval %q", c.RefillInterval)
		}
		out.Refill = &apikey.CreditRefill{Amount: c.RefillAmount, Interval: c.RefillInterval, Day: int(c.RefillDay)}
	}
	return out, nil
}

// SpendArgs are the values SQLite's spend statement compares a key's refill
// boundary with, all from now (UTC, unix seconds): the statement computes
// the key's boundary from its own interval and day with them
// (CreditDueSQL), so that a concurrent change of the refill is seen by the
// same write that spends. (PostgreSQL decides its batches of spends in Go,
// with apikey.Credits.At, on the row it has locked.)
type SpendArgs struct {
	Now, DayStart, MonthStart, PrevMonthStart int64
	Day, DaysInMonth, DaysInPrevMonth         int64
}

// NewSpendArgs are the SpendArgs at now.
func NewSpendArgs(now time.Time) SpendArgs {
	now = now.UTC()
	y, m, d := now.Date()
	month := time.Date(y, m, 1, 0, 0, 0, 0, time.UTC)
	prev := month.AddDate(0, -1, 0)
	return SpendArgs{
		Now: now.Unix(), DayStart: time.Date(y, m, d, 0, 0, 0, 0, time.UTC).Unix(),
		MonthStart: month.Unix(), PrevMonthStart: prev.Unix(),
		Day: int64(d), DaysInMonth: int64(month.AddDate(0, 1, -1).Day()), DaysInPrevMonth: int64(month.AddDate(0, 0, -1).Day()),
	}
}

// CreditDueSQL is the condition "a refill is due" over a key row, as
// apikey.Credits.Due decides it, in SQL (SQLite's spend statement): least is the
// dialect's two-argument minimum (LEAST, min) and p(name) the placeholder
// of the SpendArgs field name.
func CreditDueSQL(least string, p func(string) string) string {
	dayOf := func(last string) string { return least + `(credits_refill_day, ` + p(last) + `)` }
	return `(credits_refill_amount > 0 AND (CASE WHEN credits_refill_interval = 'daily' THEN ` + p("DayStart") +
		` WHEN ` + dayOf("DaysInMonth") + ` <= ` + p("Day") + ` THEN ` + p("MonthStart") + ` + (` + dayOf("DaysInMonth") + ` - 1) * 86400` +
		` ELSE ` + p("PrevMonthStart") + ` + (` + dayOf("DaysInPrevMonth") + ` - 1) * 86400 END) > credits_refilled_at)`
}
