package sqlite

import (
	"testing"
	"time"
)

// FuzzParseTime: what fastTime reads, time.Parse reads alike; parseTime
// always answers as time.Parse.
func FuzzParseTime(f *testing.F) {
	for _, s := range []string{
		"2026-12-06T10:45:31.123456789Z", "0000-01-01T00:00:00.000000000Z", "9999-12-31T23:59:59.999999999Z",
		"2024-02-29T00:00:00.000000000Z", "2023-02-29T00:00:00.000000000Z", "2026-04-31T00:00:00.000000000Z",
		"2026-13-01T00:00:00.000000000Z", "2026-00-01T00:00:00.000000000Z", "2026-01-00T00:00:00.000000000Z",
		"2026-01-01T24:00:00.000000000Z", "2026-01-01T23:60:00.000000000Z", "2026-01-01T23:59:60.000000000Z",
		"2026-01-01T00:00:00.00000000aZ", "2026-01-01 00:00:00.000000000Z", "2026-01-01T00:00:00.000000000",
		"+026-01-01T00:00:00.000000000Z", "", "2026-01-01T00:00:00Z",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, werr := time.Parse(timeFormat, s)
		if got, ok := fastTime(s); ok && (werr != nil || !got.Equal(want) || got.Location() != want.Location() || got != want) {
			t.Fatalf("fastTime(%q) = %v; time.Parse: %v, %v", s, got, want, werr)
		}
		if got, err := parseTime(s); (err != nil) != (werr != nil) || got != want {
			t.Fatalf("parseTime(%q) = %v, %v; time.Parse: %v, %v", s, got, err, want, werr)
		}
	})
}

// TestFastTimeTakesWhatTheStoreWrites: fmtTime's text is read without time.Parse.
func TestFastTimeTakesWhatTheStoreWrites(t *testing.T) {
	for _, ts := range []time.Time{time.Now(), time.Unix(0, 0), time.Date(2024, 2, 29, 23, 59, 59, 1, time.FixedZone("x", 3600))} {
		if got, ok := fastTime(fmtTime(ts)); !ok || !got.Equal(ts) {
			t.Errorf("fastTime(%s) = %v, %v", fmtTime(ts), got, ok)
		}
	}
	// Every day of years 0-9999 (the days-from-civil arithmetic), at a
	// time of day that moves, as time.Parse reads it.
	for ts := time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC); ts.Year() < 10000; ts = ts.Add(24*time.Hour + time.Second + 7) {
		text := fmtTime(ts)
		want, err := time.Parse(timeFormat, text)
		if got, ok := fastTime(text); err != nil || !ok || got != want {
			t.Fatalf("fastTime(%s) = %v, %v; time.Parse: %v, %v", text, got, ok, want, err)
		}
	}
}
