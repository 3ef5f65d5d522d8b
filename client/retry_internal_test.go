package client

import (
	"math/rand/v2"
	"testing"
	"time"
)

// The backoff of keyed retries: full jitter under an exponential ceiling
// capped at 2 s.
func TestBackoffBounds(t *testing.T) {
	want := map[int]time.Duration{
		-1: 100 * time.Millisecond, 0: 100 * time.Millisecond, 1: 200 * time.Millisecond, 2: 400 * time.Millisecond,
		3: 800 * time.Millisecond, 4: 1600 * time.Millisecond, 5: 2 * time.Second, 6: 2 * time.Second,
		15: 2 * time.Second, 16: 2 * time.Second, 63: 2 * time.Second, 64: 2 * time.Second, 1 << 30: 2 * time.Second,
	}
	for n, ceiling := range want {
		if got := backoffCeiling(n); got != ceiling {
			t.Errorf("backoffCeiling(%d) = %v, want %v", n, got, ceiling)
		}
		// The extremes of the draw are the extremes of the wait: 0 and the ceiling itself.
		if got := jitteredBackoff(n, func(k int64) int64 { return 0 }); got != 0 {
			t.Errorf("retry %d, lowest draw: %v, want 0", n, got)
		}
		if got := jitteredBackoff(n, func(k int64) int64 { return k - 1 }); got != ceiling {
			t.Errorf("retry %d, highest draw: %v, want %v", n, got, ceiling)
		}
	}
	// Real draws stay within [0, ceiling] and spread over it: with 2000
	// uniform draws, all of them in one half has probability 2^-1999.
	for n := range 8 {
		ceiling := backoffCeiling(n)
		var low, high bool
		for range 2000 {
			d := jitteredBackoff(n, rand.Int64N)
			if d < 0 || d > ceiling {
				t.Fatalf("retry %d waited %v, outside [0, %v]", n, d, ceiling)
			}
			low, high = low || d < ceiling/2, high || d > ceiling/2
		}
		if !low || !high {
			t.Errorf("retry %d: 2000 waits all in one half of [0, %v]: not jittered", n, ceiling)
		}
	}
}
