package main

import (
	"context"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// drainListener is the API's listener, closed by the drain (before
// http.Server.Shutdown, which closes it again: only the first Close acts).
type drainListener struct {
	net.Listener
	once   sync.Once
	closed atomic.Bool
	err    error
}

func (l *drainListener) Close() error {
	l.once.Do(func() { l.closed.Store(true); l.err = l.Listener.Close() })
	return l.err
}

// connTracker follows the API's connections (http.Server.ConnState), so
// that the drain knows when none is reading or answering a request.
type connTracker struct {
	mu    sync.Mutex
	conns map[net.Conn]connState
}

type connState struct {
	state http.ConnState
	since time.Time
}

func (t *connTracker) note(c net.Conn, s http.ConnState) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.conns == nil {
		t.conns = map[net.Conn]connState{}
	}
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(t.conns, c)
	default:
		t.conns[c] = connState{s, time.Now()}
	}
}

// busy counts the connections with a request under way: active, or new
// for less than newGrace (a client that connects sends its request at once;
// one silent longer is left to Shutdown, as an idle one).
func (t *connTracker) busy() int {
	const newGrace = time.Second
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.conns {
		if s.state == http.StateActive || (s.state == http.StateNew && time.Since(s.since) < newGrace) {
			n++
		}
	}
	return n
}

// quiet waits until no connection is busy, or ctx ends.
func (t *connTracker) quiet(ctx context.Context) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for t.busy() > 0 {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}
