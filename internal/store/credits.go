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
