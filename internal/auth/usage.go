package auth

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// UsageTracker remembers each key's latest use in memory and writes the
// batch to the store periodically, so authentication costs no store write.
type UsageTracker struct {
	store   store.Store
	log     *slog.Logger
	mu      sync.Mutex
	pending map[apikey.Mode]map[string]store.Usage
	// sizes is how many keys each mode's last flush took: the next
	// interval's map starts that large, as the keys used in one interval
	// are about as many as in the last, instead of growing (and rehashing
	// every key) from empty under mu on every flush interval.
	sizes map[apikey.Mode]int
}

func NewUsageTracker(s store.Store, log *slog.Logger) *UsageTracker {
	return &UsageTracker{store: s, log: log, pending: map[apikey.Mode]map[string]store.Usage{}, sizes: map[apikey.Mode]int{}}
}

// Record notes a use; the latest per key wins.
func (u *UsageTracker) Record(mode apikey.Mode, keyID string, at time.Time, ip string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	m := u.pending[mode]
	if m == nil {
		m = make(map[string]store.Usage, u.sizes[mode])
		u.pending[mode] = m
	}
	if prev, ok := m[keyID]; !ok || at.After(prev.At) {
		m[keyID] = store.Usage{KeyID: keyID, At: at, IP: ip}
	}
}

// Pending returns the not yet flushed use of a key, if any.
func (u *UsageTracker) Pending(mode apikey.Mode, keyID string) (store.Usage, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	v, ok := u.pending[mode][keyID]
	return v, ok
}

// Flush writes what is pending, each mode's batch in key id order (one use
// per key: the stores' RecordUsage updates in id order, and finds it sorted
// already instead of sorting it stably). On failure the batch is put back,
// unless a newer use has arrived meanwhile.
func (u *UsageTracker) Flush(ctx context.Context) error {
	u.mu.Lock()
	batches := u.pending
	u.pending = map[apikey.Mode]map[string]store.Usage{}
	for mode, m := range batches {
		u.sizes[mode] = len(m)
	}
	u.mu.Unlock()
	var firstErr error
	for mode, m := range batches {
		batch := make([]store.Usage, 0, len(m))
		for _, v := range m {
			batch = append(batch, v)
		}
		// The ids are distinct: an unstable sort orders them all the same.
		slices.SortFunc(batch, func(a, b store.Usage) int { return strings.Compare(a.KeyID, b.KeyID) })
		if err := u.store.Repo(mode).RecordUsage(ctx, batch); err != nil {
			for _, v := range batch {
				u.Record(mode, v.KeyID, v.At, v.IP)
			}
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

// Run flushes every interval until ctx ends, then once more.
func (u *UsageTracker) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			// ctx has ended: the last flush gets a fresh deadline of its
			// own, keeping ctx's values.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			if err := u.Flush(fctx); err != nil {
				u.log.Error("final usage flush failed", "err", err)
			}
			cancel()
			return
		case <-t.C:
			// A flush cut short because ctx ended (shutdown) is not a
			// failure: its uses were put back, and the final flush above
			// writes them. Only a flush that failed on its own is logged.
			if err := u.Flush(ctx); err != nil && ctx.Err() == nil {
				u.log.Warn("usage flush failed; will retry", "err", err)
			}
		}
	}
}
