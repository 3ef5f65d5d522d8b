package server_test

// Usage credits in TestCredentialSafetyModel (issue 22), written out as the
// model's own rule: the model keeps each key's credits exactly (what is
// left, the refill, when it was last set or refilled) and finds the last
// refill boundary by walking back day by day, not by internal/apikey's
// arithmetic. Every verify that is otherwise VALID spends its drawn cost;
// nothing else does (the outsider's requests, the key's own requests, a
// refused verify), which the step's store check holds to the model.
//
// 24. credits never grow: a key with credits obtains, rotates, changes or
//     deletes only keys whose credits (as they stand) are within its own:
//     no more left, a refill only under one of its own of no larger amount
//     and no shorter interval, never a key without credits (40308); an
//     update adds (credits_add) only to a key with credits (42208); the root
//     is never given credits (42205); verify answers USAGE_EXCEEDED, with
//     what is left, when the cost is more than that.

import (
	"fmt"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// csmRefill is a refill: to amount, daily or on day (1..31) monthly.
type csmRefill struct {
	amount int64
	daily  bool
	day    int
}

// csmCredits are a key's credits as the model keeps them: left as of at
// (the second it was last set or refilled, as the server keeps it).
type csmCredits struct {
	left   int64
	refill *csmRefill
	at     time.Time
}

func (c *csmCredits) String() string {
	switch {
	case c == nil:
		return "no credits"
	case c.refill == nil:
		return fmt.Sprintf("%d credits", c.left)
	case c.refill.daily:
		return fmt.Sprintf("%d credits, refill %d daily", c.left, c.refill.amount)
	}
	return fmt.Sprintf("%d credits, refill %d monthly on day %d", c.left, c.refill.amount, c.refill.day)
}

// csmLastRefill is the latest refill time at or before now: 00:00 UTC of a
// day, walking back from now's day to the first that is a refill day (every
// day; or the refill's day of its month, the month's last day when it has
// fewer days).
func csmLastRefill(r *csmRefill, now time.Time) time.Time {
	d := now.UTC().Truncate(24 * time.Hour)
	for !r.daily {
		last := time.Date(d.Year(), d.Month()+1, 0, 0, 0, 0, 0, time.UTC).Day()
		if d.Day() == min(r.day, last) {
			break
		}
		d = d.Add(-24 * time.Hour)
	}
	return d
}

// settle applies a refill due at now: what every read and spend at now sees.
func (c *csmCredits) settle(now time.Time) *csmCredits {
	if c != nil && c.refill != nil && csmLastRefill(c.refill, now).After(c.at) {
		c.left, c.at = c.refill.amount, now.UTC().Truncate(time.Second)
	}
	return c
}

// csmCreditsWithin: outer nil bounds nothing; inner nil (no credits) is
// within no outer; else no more left, and a refill only under one of
// outer's, no larger and no more often (daily is more often than monthly).
func csmCreditsWithin(inner, outer *csmCredits) bool {
	switch {
	case outer == nil:
		return true
	case inner == nil || inner.left > outer.left:
		return false
	case inner.refill == nil:
		return true
	case outer.refill == nil:
		return false
	}
	return inner.refill.amount <= outer.refill.amount && !(inner.refill.daily && !outer.refill.daily)
}

// csmSameCredits: the same left and refill (at aside).
func csmSameCredits(a, b *csmCredits) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.left == b.left && (a.refill == nil && b.refill == nil || a.refill != nil && b.refill != nil && *a.refill == *b.refill)
}

// csmShownCredits is credits as an answer shows them (nil: absent).
func csmShownCredits(c *client.Credits) *csmCredits {
	if c == nil {
		return nil
	}
	out := &csmCredits{left: c.Remaining}
	if r := c.Refill; r != nil {
		out.refill = &csmRefill{amount: r.Amount, daily: r.Interval == client.RefillDaily}
		if r.Day != nil {
			out.refill.day = *r.Day
		}
	}
	return out
}

// csmStoredCredits is what the store holds, as of now by the model's rule.
func csmStoredCredits(c *apikey.Credits, now time.Time) *csmCredits {
	if c == nil {
		return nil
	}
	out := &csmCredits{left: c.Remaining, at: c.RefilledAt}
	if r := c.Refill; r != nil {
		out.refill = &csmRefill{amount: r.Amount, daily: r.Interval == apikey.RefillDaily, day: r.Day}
	}
	return out.settle(now)
}

// auditValue is credits as an audit event's changes print (fmt.Sprint of the
// decoded JSON object).
func (c *csmCredits) auditValue() string {
	m := map[string]any{"remaining": c.left}
	if r := c.refill; r != nil {
		refill := map[string]any{"amount": r.amount, "interval": "monthly", "day": r.day}
		if r.daily {
			refill = map[string]any{"amount": r.amount, "interval": "daily"}
		}
		m["refill"] = refill
	}
	return fmt.Sprint(m)
}

// sent is c as a request sends it; a monthly refill on day 1 leaves the
// day out half the time (its default).
func (c *csmCredits) sent(rt *rapid.T) *client.Credits {
	out := &client.Credits{Remaining: c.left}
	if r := c.refill; r != nil {
		out.Refill = &client.CreditRefill{Amount: r.amount, Interval: client.RefillMonthly}
		switch {
		case r.daily:
			out.Refill.Interval = client.RefillDaily
		case r.day != 1 || rapid.Bool().Draw(rt, "send day 1"):
			day := r.day
			out.Refill.Day = &day
		}
	}
	return out
}

// drawCredits draws a create's or an update's credits: absent (create
// only), within the caller's (its own as they stand, or less), or beyond
// them (more left, a larger or more frequent refill, any), the model's
// credits set at now.
func (m *csmModel) drawCredits(rt *rapid.T, caller *csmCredits, update bool, now time.Time) *csmCredits {
	kinds := []string{"within the caller's", "within the caller's", "beyond the caller's", "any"}
	if !update {
		kinds = append(kinds, "absent", "absent", "absent", "absent")
	}
	drawRefill := func(most int64) *csmRefill {
		switch rapid.SampledFrom([]string{"none", "daily", "monthly"}).Draw(rt, "refill") {
		case "daily":
			return &csmRefill{amount: rapid.Int64Range(1, most).Draw(rt, "refill amount"), daily: true}
		case "monthly":
			return &csmRefill{amount: rapid.Int64Range(1, most).Draw(rt, "refill amount"), day: rapid.SampledFrom([]int{1, 15, 28, 29, 30, 31}).Draw(rt, "refill day")}
		}
		return nil
	}
	c := &csmCredits{at: now.UTC().Truncate(time.Second)}
	caller = caller.settle(now)
	switch kind := rapid.SampledFrom(kinds).Draw(rt, "credits"); {
	case kind == "absent":
		return nil
	case kind == "within the caller's" && caller != nil:
		c.left = rapid.Int64Range(0, caller.left).Draw(rt, "credits left")
		if r := caller.refill; r != nil && rapid.Bool().Draw(rt, "with a refill") {
			c.refill = &csmRefill{amount: rapid.Int64Range(1, r.amount).Draw(rt, "refill amount"), daily: r.daily, day: r.day}
			if r.daily && rapid.Bool().Draw(rt, "monthly under daily") {
				c.refill.daily, c.refill.day = false, rapid.SampledFrom([]int{1, 31}).Draw(rt, "refill day")
			}
		}
	case kind == "beyond the caller's" && caller != nil:
		c.left, c.refill = caller.left+rapid.Int64Range(0, 3).Draw(rt, "credits more"), drawRefill(caller.left+10)
	default:
		c.left, c.refill = rapid.Int64Range(0, 12).Draw(rt, "credits left"), drawRefill(12)
	}
	return c
}

// creditsOf is a principal's credits as they stand at now (nil: none).
func (p *csmPrincipal) creditsAt(now time.Time) *csmCredits {
	if p == nil {
		return nil
	}
	return p.credits.settle(now)
}

// checkCreditsObtained holds rule 24: what a caller with credits obtained
// or changed has credits within its own (both as of now).
func (m *csmModel) checkCreditsObtained(rt *rapid.T, p *csmPrincipal, c *csmCredits, now time.Time, what string) {
	if own := p.creditsAt(now); p != nil && !csmCreditsWithin(c, own) {
		rt.Fatalf("CREDITS GREW (rule 24): %s, by a caller with %s, succeeded on a key with %s", what, own, c)
	}
}

// awayFromMidnight moves the clock a few seconds when it is within two
// seconds of 00:00 UTC, where every refill happens: the model's clock and
// the server's are read a few milliseconds apart, and the model decides
// refills on its own reading.
func (m *csmModel) awayFromMidnight() {
	now := m.now()
	if since := now.Sub(now.Truncate(24 * time.Hour)); since < 2*time.Second || since > 24*time.Hour-2*time.Second {
		m.env.Clock.Advance(5 * time.Second)
		m.advanced += 5 * time.Second
	}
}

// csmCost draws a verify's cost: absent (1), 0, small, or more than any
// key holds.
func csmCost(rt *rapid.T) *int {
	switch rapid.SampledFrom([]string{"absent", "absent", "0", "small", "large"}).Draw(rt, "cost") {
	case "0":
		return new(int)
	case "small":
		n := rapid.IntRange(1, 4).Draw(rt, "cost n")
		return &n
	case "large":
		n := 1000000
		return &n
	}
	return nil
}

// newCredits are the credits an update leaves the key with at now: those it
// sets, or what the key has left plus what it adds; nil when it touches
// neither (or adds to a key without credits, which is refused).
func (r csmUpdateReq) newCredits(k *csmKey, now time.Time) *csmCredits {
	switch {
	case r.credits != nil:
		c := *r.credits
		return &c
	case r.add != nil && k != nil && k.credits != nil:
		c := *k.credits.settle(now)
		c.left += *r.add
		return &c
	}
	return nil
}

func csmInt(n *int64) string {
	if n == nil {
		return "absent"
	}
	return fmt.Sprint(*n)
}
