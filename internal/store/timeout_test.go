package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// frozen is a store whose every call waits for its context: a server that
// stopped answering.
type frozen struct{ store.Store }

func (frozen) Repo(apikey.Mode) store.Repository { return frozenRepo{} }

func (frozen) Ping(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }

type frozenRepo struct{ store.Repository }

func (frozenRepo) GetKey(ctx context.Context, _ string) (*apikey.Key, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func (frozenRepo) InTx(ctx context.Context, fn func(store.Tx) error) error {
	return fn(frozenTx{})
}

type frozenTx struct{ store.Tx }

func (frozenTx) Key(ctx context.Context, _ string) (*apikey.Key, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

func TestWithTimeout(t *testing.T) {
	const d = 50 * time.Millisecond
	s := store.WithTimeout(frozen{}, d)
	r := s.Repo(apikey.Sandbox)
	ctx := context.Background()
	for name, call := range map[string]func(context.Context) error{
		"ping":   s.Ping,
		"getKey": func(ctx context.Context) error { _, err := r.GetKey(ctx, "k"); return err },
		// fn passes the caller's context, not InTx's: the unit's deadline holds anyway.
		"inTx": func(ctx context.Context) error {
			return r.InTx(ctx, func(tx store.Tx) error { _, err := tx.Key(ctx, "k"); return err })
		},
	} {
		start := time.Now()
		err := call(ctx)
		if took := time.Since(start); !errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || took > 10*d {
			t.Errorf("%s on a frozen store: %v after %v, want ErrUnavailable after %v", name, err, took, d)
		}
		// A caller that gives up first is not the store's failure.
		cctx, cancel := context.WithTimeout(ctx, d/5)
		err = call(cctx)
		cancel()
		if errors.Is(err, store.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s with the caller's own shorter deadline: %v, want the caller's deadline, not ErrUnavailable", name, err)
		}
	}
	if store.WithTimeout(frozen{}, 0) != (frozen{}) {
		t.Error("WithTimeout(s, 0) is not s")
	}
}
