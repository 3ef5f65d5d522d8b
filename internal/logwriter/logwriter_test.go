package logwriter_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/logwriter"
)

// lockedBuffer is an io.Writer tests can read while the writer writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	n  int // Write calls
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestEveryLineInOrderAfterClose: lines from many goroutines all arrive,
// whole, each goroutine's in its order, by the time Close returns; lines
// written after Close arrive too.
func TestEveryLineInOrderAfterClose(t *testing.T) {
	var out lockedBuffer
	w := logwriter.New(&out)
	const writers, lines = 8, 2000
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				_, _ = fmt.Fprintf(w, "g%d line %d %s\n", g, i, strings.Repeat("x", i%300))
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	_, _ = fmt.Fprintf(w, "after close\n")
	next := make([]int, writers)
	got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
	if len(got) != writers*lines+1 || got[len(got)-1] != "after close" {
		t.Fatalf("%d lines, last %q", len(got), got[len(got)-1])
	}
	for _, l := range got[:len(got)-1] {
		var g, i int
		var pad string
		if _, err := fmt.Sscanf(l, "g%d line %d %s", &g, &i, &pad); err != nil && i%300 != 0 {
			t.Fatalf("mangled line %q: %v", l, err)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d after %d", g, i, next[g]-1)
		}
		next[g]++
	}
	if out.n >= writers*lines {
		t.Logf("%d writes for %d lines: no batching happened (possible on an idle machine)", out.n, writers*lines)
	}
}

// TestCloseRacesWrites: Close returns, with every line written, however it
// races the last Writes and their wake-ups (it once waited for ever on a
// wake-up the goroutine, already stopped, would never take).
func TestCloseRacesWrites(t *testing.T) {
	for i := range 300 {
		var out lockedBuffer
		w := logwriter.New(&out)
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range i % 7 {
					_, _ = w.Write([]byte("l\n"))
				}
			})
		}
		wg.Wait()
		closed := make(chan error)
		go func() { closed <- w.Close() }()
		select {
		case err := <-closed:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: Close did not return", i)
		}
		if n := strings.Count(out.String(), "\n"); n != 8*(i%7) {
			t.Fatalf("round %d: %d lines of %d", i, n, 8*(i%7))
		}
	}
}

// TestLineGoesOutPromptly: an idle writer writes a line at once, without
// waiting for more lines or a Close.
func TestLineGoesOutPromptly(t *testing.T) {
	var out lockedBuffer
	w := logwriter.New(&out)
	defer func() { _ = w.Close() }() // io.Discard-like: nothing to fail
	_, _ = fmt.Fprintln(w, "hello")
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "hello\n" {
		if time.Now().After(deadline) {
			t.Fatal("the line was not written")
		}
		time.Sleep(time.Millisecond)
	}
}

// blocked is an io.Writer that holds every write until released.
type blocked struct {
	release chan struct{}
	lockedBuffer
}

func (b *blocked) Write(p []byte) (int, error) {
	<-b.release
	return b.lockedBuffer.Write(p)
}

// TestBackPressure: with MaxPending bytes waiting, Write waits for the
// writer instead of dropping or growing without bound.
func TestBackPressure(t *testing.T) {
	out := &blocked{release: make(chan struct{})}
	w := logwriter.New(out)
	line := []byte(strings.Repeat("x", 1023) + "\n")
	// The first line is taken by the goroutine and blocks in out; then fill up.
	_, _ = w.Write(line)
	time.Sleep(10 * time.Millisecond)
	for range logwriter.MaxPending / len(line) {
		_, _ = w.Write(line)
	}
	wrote := make(chan struct{})
	go func() { _, _ = w.Write(line); close(wrote) }()
	select {
	case <-wrote:
		t.Fatal("Write returned with MaxPending bytes waiting")
	case <-time.After(50 * time.Millisecond):
	}
	close(out.release)
	<-wrote
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "\n"); n != logwriter.MaxPending/len(line)+2 {
		t.Fatalf("%d lines written", n)
	}
}

type failing struct{}

func (failing) Write([]byte) (int, error) { return 0, errors.New("disk full") }

// TestErrorReported: out's error comes back from later Writes and Close.
func TestErrorReported(t *testing.T) {
	w := logwriter.New(failing{})
	_, _ = w.Write([]byte("a\n"))
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Close: %v", err)
	}
	if err := w.Close(); err == nil {
		t.Fatal("a second Close forgot the error")
	}
}
