package ratelimit

import (
	"sync"
	"time"
)

// Blocklist remembers, in this process, keys known to be over their budget
// and until when, so their requests can be refused before any costly work
// (for failed authentications: before the credential lookup). It is only a
// shortcut in front of a Limiter, which stays the authority: an entry that
// is missing (never seen, dropped because the list was full, or set by
// another replica) costs one lookup, after which the Limiter refuses again.
//
// Entries expire on their own; the list holds at most Max entries (expired
// ones are swept when it is full; if it is still full the new entry is not
// kept).
type Blocklist struct {
	Max int // default 65 536

	mu        sync.Mutex
	until     map[string]time.Time
	lastSweep time.Time
	now       func() time.Time
}

const defaultBlocklistMax = 1 << 16

// sweepEvery bounds how often a full list is scanned, so a flood of
// distinct keys cannot make every insert walk the whole map.
const sweepEvery = 100 * time.Millisecond

func (b *Blocklist) clock() time.Time {
	if b.now != nil {
		return b.now()
	}
	return time.Now()
}

// Block refuses key until the given time (a later time already recorded wins).
func (b *Blocklist) Block(key string, until time.Time) {
	now := b.clock()
	if !until.After(now) {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.until == nil {
		b.until = map[string]time.Time{}
	}
	if old, ok := b.until[key]; ok {
		if until.After(old) {
			b.until[key] = until
		}
		return
	}
	max := b.Max
	if max <= 0 {
		max = defaultBlocklistMax
	}
	if len(b.until) >= max && now.Sub(b.lastSweep) >= sweepEvery {
		for k, u := range b.until {
			if !u.After(now) {
				delete(b.until, k)
			}
		}
		b.lastSweep = now
	}
	if len(b.until) >= max {
		return // full: the Limiter still refuses this key, after a lookup
	}
	b.until[key] = until
}

// Blocked reports how long key is still refused, if it is.
func (b *Blocklist) Blocked(key string) (time.Duration, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.until[key]
	if !ok {
		return 0, false // every request asks: no clock read for the addresses not held
	}
	now := b.clock()
	if !u.After(now) {
		delete(b.until, key)
		return 0, false
	}
	return u.Sub(now), true
}

// Len is the number of entries held, expired ones included.
func (b *Blocklist) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.until)
}
