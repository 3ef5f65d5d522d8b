//go:build unix

package sqlite_test

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/cputime"

	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// Store writes on SQLite with the server's settings (WAL; synchronous=NORMAL
// by default: a commit survives a process crash, not a power loss).

const benchAccount = "acct_bench"

var sinkKey *apikey.Key

func benchRepo(b *testing.B, sync string) store.Repository {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Synchronous: sync})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
	repo := st.Repo(apikey.Sandbox)
	if err := store.CreateAccount(ctx, repo, benchAccount, time.Now()); err != nil {
		b.Fatal(err)
	}
	return repo
}

func newKey(b *testing.B, name string) *apikey.Key {
	b.Helper()
	id, err := keys.NewID()
	if err != nil {
		b.Fatal(err)
	}
	tok, err := keys.New(keys.KindSecret, true)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now().UTC()
	return &apikey.Key{
		ID: id, AccountID: benchAccount, Name: name, Type: apikey.TypeSecret,
		SecretHash: keys.Hash(tok), Status: apikey.StatusActive,
		Permissions: map[string][]string{"payment": {"create", "read"}, "refund": {"read"}},
		Metadata:    map[string]string{"team": "bench"},
		CreatedAt:   now, UpdatedAt: now,
	}
}

// BenchmarkInsertKey is create's write: one autocommit INSERT (two unique
// indexes: name among active keys, secret hash).
func BenchmarkInsertKey(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			repo := benchRepo(b, sync)
			ctx := context.Background()
			i := 0
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				i++
				k := newKey(b, fmt.Sprintf("bench %d", i)) // ~2µs of the total: id, secret, hash
				if err := store.InsertKey(ctx, repo, k); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkUpdateKey is regenerate's write: BEGIN IMMEDIATE, SELECT, UPDATE,
// COMMIT, with the new secret's hash set by the callback.
func BenchmarkUpdateKey(b *testing.B) {
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			repo := benchRepo(b, sync)
			ctx := context.Background()
			k := newKey(b, "rotated")
			k.Managed = true
			if err := store.InsertKey(ctx, repo, k); err != nil {
				b.Fatal(err)
			}
			hash := make([]byte, 32)
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			for b.Loop() {
				hash[0]++
				hash[1] += hash[0] >> 7 // keep hashes distinct across wraps of hash[0]
				got, err := store.UpdateKey(ctx, repo, k.ID, func(k *apikey.Key) error {
					k.SecretHash = append([]byte(nil), hash...)
					k.UpdatedAt = time.Now().UTC()
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
				sinkKey = got
			}
		})
	}
}

// benchWriters is how many goroutines the parallel benchmarks run: the load
// benchmark's 32 connections, whatever GOMAXPROCS is.
const benchWriters = 32

// benchKeyCap is the active-key cap of the creates, load.sh's: a benchmark of
// many thousand creates on 4 accounts with the default cap (500) measured the
// walk of 500 index entries that a create past the cap makes before it is
// refused, not a create.
const benchKeyCap = 1_000_000

// BenchmarkCreateParallel is create's unit of work from 32 goroutines at
// once, as the server runs it under load: re-read the caller's key, lock the
// account, check its active keys against the cap (benchKeyCap), release an expired
// name, insert the key and append the audit event. Creates are spread over a
// few accounts, each with its own managed caller key.
func BenchmarkCreateParallel(b *testing.B) {
	const accounts = 4
	for _, sync := range []string{"NORMAL", "FULL"} {
		b.Run("synchronous="+sync, func(b *testing.B) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{Synchronous: sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
			repo := st.Repo(apikey.Sandbox)
			callers := make([]*apikey.Key, accounts)
			for a := range callers {
				acct := fmt.Sprintf("acct_bench_%d", a)
				if err := store.CreateAccount(ctx, repo, acct, time.Now()); err != nil {
					b.Fatal(err)
				}
				callers[a] = newKey(b, "managed")
				callers[a].AccountID, callers[a].Managed = acct, true
				if err := store.InsertKey(ctx, repo, callers[a]); err != nil {
					b.Fatal(err)
				}
			}
			var seq atomic.Int64
			b.SetParallelism((benchWriters + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ReportAllocs()
			defer cputime.Report(b, cputime.Process())
			batches0, units0 := sqlite.Batches(st, apikey.Sandbox)
			pages0 := sqlite.PagesWritten(st, apikey.Sandbox)
			defer func() {
				if batches, units := sqlite.Batches(st, apikey.Sandbox); batches > batches0 {
					b.ReportMetric(float64(units-units0)/float64(batches-batches0), "units/batch")
					b.ReportMetric(float64(sqlite.PagesWritten(st, apikey.Sandbox)-pages0)/float64(units-units0), "pages/unit")
				}
			}()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := seq.Add(1)
					caller := callers[i%accounts]
					k := newKey(b, fmt.Sprintf("bench %d", i)) // ~2µs of the total: id, secret, hash
					k.AccountID = caller.AccountID
					evtID, err := keys.NewEventID()
					if err != nil {
						b.Error(err)
						return
					}
					err = repo.InTx(ctx, func(tx store.Tx) error {
						if _, err := tx.Key(ctx, caller.ID); err != nil {
							return err
						}
						if err := tx.LockAccount(ctx, k.AccountID); err != nil {
							return err
						}
						if _, err := tx.KeyCapReached(ctx, k.AccountID, k.CreatedAt, benchKeyCap); err != nil {
							return err
						}
						if err := tx.ReleaseExpiredName(ctx, k.AccountID, k.Name, k.CreatedAt); err != nil {
							return err
						}
						if err := tx.InsertKey(ctx, k); err != nil {
							return err
						}
						return tx.AppendAuditEvent(ctx, &audit.Event{
							ID: evtID, AccountID: k.AccountID, Action: audit.Create, KeyID: k.ID,
							Actor: apikey.Actor{Kind: apikey.ActorKey, ID: caller.ID, RequestID: "req_bench"}, ClientIP: "127.0.0.1",
							CreatedAt: k.CreatedAt, Changes: map[string]any{"name": k.Name, "type": k.Type,
								"permissions": k.Permissions, "metadata": k.Metadata, "status": k.Status, "managed": false,
								"expires_at": nil, "key_hint": "sk_test_…abcd"},
						})
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkKeyBySecretHash is authentication's read, for comparison.
func BenchmarkKeyBySecretHash(b *testing.B) {
	repo := benchRepo(b, "NORMAL")
	ctx := context.Background()
	k := newKey(b, "lookup")
	if err := store.InsertKey(ctx, repo, k); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		got, err := repo.KeyBySecretHash(ctx, k.SecretHash)
		if err != nil {
			b.Fatal(err)
		}
		sinkKey = got
	}
}
