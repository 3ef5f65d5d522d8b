// Package logwriter takes the writing of log lines off the request path.
//
// The server writes one JSON line per request. Written straight to stderr,
// each line is a write system call made while slog's handler holds its lock,
// so under load the requests queue behind each other's log writes. A Writer
// copies the line into memory and returns; one goroutine writes whatever has
// accumulated, in one call, as soon as its previous write has returned: an
// idle server's lines go out at once, a busy one's in batches of many lines
// per system call. Nothing waits for a timer.
//
// No line is dropped: past MaxPending bytes not yet written, Write waits for
// the writer to catch up (the old behaviour's back-pressure) instead of
// growing or discarding. Close writes everything pending and returns once it
// is written; the commands close the writer before they return, print
// anything else or exit, so a normal exit, a signal or a startup error loses
// no line. What a crash of the process (a runtime fatal error, SIGKILL)
// loses is the lines accepted during the last write, not yet written — a
// window of one write system call; Go's own crash report goes to the file
// descriptor directly and is not affected.
package logwriter

import (
	"io"
	"sync"
)

// MaxPending is how many bytes may wait to be written before Write blocks.
const MaxPending = 1 << 20

// Writer is an io.Writer for log lines; safe for concurrent use. Each Write
// must hold whole lines (slog's handlers write one record per call), so
// lines from concurrent writers never interleave.
type Writer struct {
	out io.Writer

	mu      sync.Mutex
	room    sync.Cond // signalled when pending shrinks or the writer stops
	pending []byte    // accepted, not yet handed to out
	spare   []byte    // the buffer of the previous batch, reused; nil while a batch is out
	closed  bool
	err     error // out's first error, returned by later Writes and Close

	wake chan struct{} // cap 1: pending has data
	done chan struct{} // closed when the goroutine has written everything and stopped
}

// New starts a writer to out; Close stops it.
func New(out io.Writer) *Writer {
	w := &Writer{out: out, wake: make(chan struct{}, 1), done: make(chan struct{})}
	w.room.L = &w.mu
	go w.run()
	return w
}

// Write accepts p (copied) for writing; it returns at once unless
// MaxPending bytes are already waiting. After Close it writes p itself.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	for !w.closed && len(w.pending) > 0 && len(w.pending)+len(p) > MaxPending {
		w.room.Wait()
	}
	if w.closed {
		w.mu.Unlock()
		<-w.done // the last batch is written: p comes after it, never beside it
		return w.out.Write(p)
	}
	w.pending = append(w.pending, p...)
	err := w.err
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default: // already woken: this line goes with the next batch
	}
	return len(p), err
}

func (w *Writer) run() {
	defer close(w.done)
	for range w.wake {
		w.mu.Lock()
		batch := w.pending
		if len(batch) > 0 {
			// Lines from now on go to the other buffer; spare is nil until
			// this batch is written, so the two never share memory.
			w.pending, w.spare = w.spare[:0], nil
		}
		closed := w.closed
		w.mu.Unlock()
		if len(batch) > 0 {
			_, err := w.out.Write(batch)
			w.mu.Lock()
			if err != nil && w.err == nil {
				w.err = err
			}
			w.spare = batch
			w.room.Broadcast()
			w.mu.Unlock()
		}
		if closed {
			return
		}
	}
}

// Close writes everything pending, stops the goroutine and returns the
// first error out returned, if any. Later Writes go straight to out.
// Calling it again does nothing.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return w.firstErr()
	}
	w.closed = true
	w.room.Broadcast()
	w.mu.Unlock()
	// A wake-up already waiting will do: run takes it after closed was set.
	// (Blocking here could wait for ever: run may have stopped on an earlier
	// wake-up, and a Write that accepted its line before closed was set may
	// have refilled the channel since.)
	select {
	case w.wake <- struct{}{}:
	default:
	}
	<-w.done
	return w.firstErr()
}

func (w *Writer) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
