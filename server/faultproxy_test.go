package server_test

import (
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// faultProxy is a TCP proxy in front of a backing service (PostgreSQL,
// Redis) that the test can stop (the port refuses, open connections are
// reset) or freeze (connections are accepted and kept, but nothing is
// forwarded either way: a hung server or a black-holed network).
type faultProxy struct {
	t      testing.TB
	target string
	Addr   string // host:port to connect to instead of target

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	stopped bool
	thawed  chan struct{} // closed while not frozen
	wg      sync.WaitGroup
}

func newFaultProxy(t testing.TB, target string) *faultProxy {
	t.Helper()
	p := &faultProxy{t: t, target: target, conns: map[net.Conn]struct{}{}, thawed: make(chan struct{})}
	close(p.thawed)
	ln, err := new(net.ListenConfig).Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(func() {
		p.Stop()
		p.Thaw() // releases pipes parked while frozen
		p.wg.Wait()
	})
	return p
}

func (p *faultProxy) serve(ln net.Listener) {
	p.ln = ln
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return // Stop closed the listener
			}
			p.wg.Add(1)
			go func() {
				defer p.wg.Done()
				p.handle(c)
			}()
		}
	}()
}

func (p *faultProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *faultProxy) handle(c net.Conn) {
	if !p.track(c) {
		_ = c.Close() // stopped meanwhile: refuse it
		return
	}
	if !p.waitThawed() { // a frozen proxy accepts, then says nothing
		_ = c.Close() // stopped while frozen
		return
	}
	up, err := new(net.Dialer).DialContext(ctx, "tcp", p.target)
	if err != nil || !p.track(up) {
		_ = c.Close() // the target is down: the client sees a reset
		if up != nil {
			_ = up.Close()
		}
		return
	}
	done := make(chan struct{}, 2)
	go func() { p.pipe(up, c); done <- struct{}{} }()
	go func() { p.pipe(c, up); done <- struct{}{} }()
	<-done
	<-done
}

// pipe copies src to dst, holding what it read while the proxy is frozen.
func (p *faultProxy) pipe(dst, src net.Conn) {
	defer func() { _ = dst.Close(); _ = src.Close() }() // either side's end ends both
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !p.waitThawed() {
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				p.t.Logf("proxy: %v", err)
			}
			return
		}
	}
}

// waitThawed blocks while the proxy is frozen; false if it was stopped.
func (p *faultProxy) waitThawed() bool {
	p.mu.Lock()
	ch := p.thawed
	p.mu.Unlock()
	<-ch
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.stopped
}

// Stop closes the port (connections are refused) and resets every open
// connection: a stopped or crashed server.
func (p *faultProxy) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.stopped = true
	_ = p.ln.Close() // ends the accept loop
	for c := range p.conns {
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // a reset, as a killed server's kernel sends
		}
		_ = c.Close()
	}
	clear(p.conns)
}

// Start opens the port again (after Stop), on the same address.
func (p *faultProxy) Start() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the old socket may linger for a moment
		if ln, err = new(net.ListenConfig).Listen(ctx, "tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.Addr, err)
	}
	p.mu.Lock()
	p.stopped = false
	p.mu.Unlock()
	p.serve(ln)
}

// Freeze keeps every connection open but forwards nothing, and parks new
// ones after accepting them.
func (p *faultProxy) Freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
		p.thawed = make(chan struct{})
	default: // frozen already
	}
}

// Thaw forwards again what was held.
func (p *faultProxy) Thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.thawed:
	default:
		close(p.thawed)
	}
}
