//go:build unix

package sqlite_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
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
