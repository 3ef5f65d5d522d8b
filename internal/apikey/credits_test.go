package apikey_test

import (
	"errors"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

func TestCreditBoundary(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, c := range []struct {
		interval  string
		day       int
		now, want string
	}{
		{apikey.RefillDaily, 0, "2026-03-10T15:04:05Z", "2026-03-10T00:00:00Z"},
		{apikey.RefillDaily, 0, "2026-03-10T00:00:00Z", "2026-03-10T00:00:00Z"},
		{apikey.RefillMonthly, 1, "2026-03-10T15:04:05Z", "2026-03-01T00:00:00Z"},
		{apikey.RefillMonthly, 15, "2026-03-10T15:04:05Z", "2026-02-15T00:00:00Z"},
		{apikey.RefillMonthly, 15, "2026-01-10T00:00:00Z", "2025-12-15T00:00:00Z"},
		{apikey.RefillMonthly, 31, "2026-04-30T00:00:00Z", "2026-04-30T00:00:00Z"}, // a 30-day month: its last day
		{apikey.RefillMonthly, 31, "2026-04-29T23:59:59Z", "2026-03-31T00:00:00Z"},
		{apikey.RefillMonthly, 30, "2026-03-01T10:00:00Z", "2026-02-28T00:00:00Z"}, // February, clamped
		{apikey.RefillMonthly, 29, "2028-02-29T10:00:00Z", "2028-02-29T00:00:00Z"}, // a leap year
		{apikey.RefillMonthly, 31, "2026-05-30T12:00:00Z", "2026-04-30T00:00:00Z"},
	} {
		r := &apikey.CreditRefill{Amount: 1, Interval: c.interval, Day: c.day}
		if got := r.Boundary(at(c.now)); !got.Equal(at(c.want)) {
			t.Errorf("%s@%d at %s: %s, want %s", c.interval, c.day, c.now, got, c.want)
		}
	}
	c := &apikey.Credits{Remaining: 3, Refill: &apikey.CreditRefill{Amount: 9, Interval: apikey.RefillDaily}, RefilledAt: at("2026-03-10T15:00:00Z")}
	if c.Effective(at("2026-03-10T23:59:59Z")) != 3 || c.Effective(at("2026-03-11T00:00:00Z")) != 9 || c.Remaining != 3 {
		t.Error("At applies a refill only once its boundary passed, and changes nothing")
	}
	if _, err := apikey.ParseCredits(1, &apikey.CreditRefill{Amount: 1, Interval: apikey.RefillDaily, Day: 2}, time.Now()); !errors.Is(err, apikey.ErrDailyRefillDay) {
		t.Errorf("a daily refill with a day: %v", err)
	}
	if p, err := apikey.ParseCredits(1, &apikey.CreditRefill{Amount: 1, Interval: apikey.RefillMonthly}, time.Now()); err != nil || p.Refill.Day != 1 {
		t.Errorf("a monthly refill's day defaults to 1: %v, %+v", err, p)
	}
}

// TestCreditSpend holds the rule both stores decide spends with: a due
// refill first, then the cost only while enough is left, cost 0 checking only.
func TestCreditSpend(t *testing.T) {
	day := time.Date(2026, 4, 30, 12, 0, 0, 0, time.UTC)
	monthly31 := &apikey.CreditRefill{Amount: 10, Interval: apikey.RefillMonthly, Day: 31}
	for _, c := range []struct {
		name      string
		remaining int64
		refill    *apikey.CreditRefill
		refilled  time.Time
		cost      int64
		want      int64
		wantOK    bool
		refills   bool
	}{
		{"enough", 5, nil, day.Add(-time.Hour), 5, 0, true, false},
		{"short", 4, nil, day.Add(-time.Hour), 5, 4, false, false},
		{"cost 0", 0, nil, day.Add(-time.Hour), 0, 0, true, false},
		// Day 31 in a 30-day month: due on the 30th.
		{"refill due", 0, monthly31, day.Add(-13 * time.Hour), 3, 7, true, true},
		{"refill due, short", 0, monthly31, day.Add(-13 * time.Hour), 11, 10, false, true},
		{"refill due, cost 0", 0, monthly31, day.Add(-13 * time.Hour), 0, 10, true, true},
		{"refill not due", 2, monthly31, day.Add(-11 * time.Hour), 3, 2, false, false},
	} {
		in := &apikey.Credits{Remaining: c.remaining, Refill: c.refill, RefilledAt: c.refilled}
		before := *in
		after, ok := in.Spend(c.cost, day.Add(500*time.Millisecond))
		if after.Remaining != c.want || ok != c.wantOK {
			t.Errorf("%s: %d, %v; want %d, %v", c.name, after.Remaining, ok, c.want, c.wantOK)
		}
		if refilled := !after.RefilledAt.Equal(c.refilled); refilled != c.refills || refilled && !after.RefilledAt.Equal(day) {
			t.Errorf("%s: refilled at %s (from %s)", c.name, after.RefilledAt, c.refilled)
		}
		if *in != before {
			t.Errorf("%s: Spend changed its receiver", c.name)
		}
	}
}
