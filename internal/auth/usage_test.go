package auth

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// blockingStore's RecordUsage waits for its context the first time (a flush
// under way when shutdown begins) and records what later calls write.
type blockingStore struct {
	store.Store
	repo *blockingRepo
}

func (s *blockingStore) Repo(apikey.Mode) store.Repository { return s.repo }

type blockingRepo struct {
	store.Repository
	mu      sync.Mutex
	calls   int
	entered chan struct{}
	written []store.Usage
	failNow error // returned by every call when set
}

func (r *blockingRepo) RecordUsage(ctx context.Context, batch []store.Usage) error {
	r.mu.Lock()
	r.calls++
	first, failNow := r.calls == 1, r.failNow
	r.mu.Unlock()
	if failNow != nil {
		return failNow
	}
	if first {
		close(r.entered)
		<-ctx.Done()
		return ctx.Err()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.written = append(r.written, batch...)
	return nil
}

// A shutdown that interrupts a periodic flush logs nothing: the final flush
// writes the uses (issue 13: "usage flush failed ... context canceled" on
// every normal SIGTERM).
func TestUsageShutdownDuringFlushLogsNoFailure(t *testing.T) {
	repo := &blockingRepo{entered: make(chan struct{})}
	var logs bytes.Buffer
	u := NewUsageTracker(&blockingStore{repo: repo}, slog.New(slog.NewTextHandler(&logs, nil)))
	u.Record(apikey.Sandbox, "key_1", time.Unix(1000, 0), "127.0.0.1")

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx, time.Millisecond); close(done) }()
	<-repo.entered // a periodic flush is under way
	cancel()
	<-done

	if logs.Len() != 0 {
		t.Fatalf("a normal shutdown logged: %s", logs.String())
	}
	if len(repo.written) != 1 || repo.written[0].KeyID != "key_1" {
		t.Fatalf("final flush wrote %+v, want key_1's use", repo.written)
	}
}

// A flush that fails on its own is still reported.
func TestUsageRealFailureIsLogged(t *testing.T) {
	repo := &blockingRepo{entered: make(chan struct{}), failNow: context.DeadlineExceeded}
	var logs bytes.Buffer
	u := NewUsageTracker(&blockingStore{repo: repo}, slog.New(slog.NewTextHandler(&logs, nil)))
	u.Record(apikey.Sandbox, "key_1", time.Unix(1000, 0), "127.0.0.1")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { u.Run(ctx, time.Millisecond); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		repo.mu.Lock()
		n := repo.calls
		repo.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !bytes.Contains(logs.Bytes(), []byte("usage flush failed; will retry")) || !bytes.Contains(logs.Bytes(), []byte("final usage flush failed")) {
		t.Fatalf("failures not logged: %s", logs.String())
	}
}

// recordingRepo keeps the batches RecordUsage is given.
type recordingRepo struct {
	store.Repository
	batches [][]store.Usage
}

func (r *recordingRepo) RecordUsage(_ context.Context, batch []store.Usage) error {
	r.batches = append(r.batches, batch)
	return nil
}

type recordingStore struct {
	store.Store
	repo *recordingRepo
}

func (s *recordingStore) Repo(apikey.Mode) store.Repository { return s.repo }

// Flush hands the store each key's latest use once, in key id order (the
// stores then write it as it is, without sorting it).
func TestUsageFlushIsInKeyIDOrder(t *testing.T) {
	repo := &recordingRepo{}
	u := NewUsageTracker(&recordingStore{repo: repo}, slog.New(slog.DiscardHandler))
	for i, id := range []string{"key_c", "key_a", "key_d", "key_b", "key_a", "key_c"} {
		u.Record(apikey.Live, id, time.Unix(int64(1000+i), 0), "127.0.0.1")
	}
	if err := u.Flush(t.Context()); err != nil {
		t.Fatal(err)
	}
	if len(repo.batches) != 1 {
		t.Fatalf("%d batches, want 1", len(repo.batches))
	}
	var got []string
	for _, v := range repo.batches[0] {
		got = append(got, v.KeyID)
	}
	if want := []string{"key_a", "key_b", "key_c", "key_d"}; !slices.Equal(got, want) {
		t.Fatalf("flushed %v, want %v", got, want)
	}
	if b := repo.batches[0]; b[0].At.Unix() != 1004 || b[2].At.Unix() != 1005 {
		t.Fatalf("not each key's latest use: %+v", b)
	}
}
