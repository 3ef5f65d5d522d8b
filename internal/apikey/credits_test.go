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
