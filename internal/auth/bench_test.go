//go:build unix

package auth_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/cputime"

	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/credcache"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// Authentication of a bearer key against a real SQLite store (WAL,
// synchronous=NORMAL, the defaults), as the authenticate middleware calls it.

var sinkPrincipal *auth.Principal

const benchAccount = "acct_bench"

// benchAuth opens a store in a temp dir holding one active sandbox secret
// key with every permission, and returns an authenticator and its token.
func benchAuth(b *testing.B) (*auth.Authenticator, string) {
	b.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = st.Close() }) // the benchmark is over: closing only frees the files
	repo := st.Repo(apikey.Sandbox)
	now := time.Now().UTC()
	if err := store.CreateAccount(ctx, repo, benchAccount, now); err != nil {
		b.Fatal(err)
	}
	token, err := keys.New(keys.KindSecret, true)
	if err != nil {
		b.Fatal(err)
	}
	id, _ := keys.NewID()
	err = store.InsertKey(ctx, repo, &apikey.Key{
		ID: id, AccountID: benchAccount, Name: "bench", Type: apikey.TypeSecret,
		SecretHash: keys.Hash(token), Status: apikey.StatusActive, Managed: true,
		Permissions: map[string][]string{
			"account": {"read", "update"}, "account:api:key": {"create", "delete", "read", "update"},
			"customer": {"create", "delete", "read", "update"}, "payment": {"cancel", "create", "read", "update"},
			"refund": {"create", "read"}, "webhook": {"create", "delete", "read", "update"},
		},
		CreatedAt: now, UpdatedAt: now,
	})
	if err != nil {
		b.Fatal(err)
	}
	a := &auth.Authenticator{
		Store: st,
		Usage: auth.NewUsageTracker(st, slog.New(slog.DiscardHandler)),
		Now:   time.Now,
	}
	return a, token
}

// BenchmarkAuthenticateSecretKey is the success path: parse, hash, one
// indexed SELECT, decode the row, expand permissions, note the use.
func BenchmarkAuthenticateSecretKey(b *testing.B) {
	a, token := benchAuth(b)
	header := "Bearer " + token
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		p, err := a.Authenticate(ctx, header, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		sinkPrincipal = p
	}
}

// Two goroutines (GOMAXPROCS on this machine) authenticating at once, as
// under load: SQLite reads share the pool of 8 connections.
func BenchmarkAuthenticateSecretKeyParallel(b *testing.B) {
	a, token := benchAuth(b)
	header := "Bearer " + token
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Authenticate(ctx, header, "127.0.0.1"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// A checksum-broken key is rejected before the store.
func BenchmarkAuthenticateBadChecksum(b *testing.B) {
	a, token := benchAuth(b)
	last := byte('A')
	if token[len(token)-1] == 'A' {
		last = 'B'
	}
	header := "Bearer " + token[:len(token)-1] + string(last)
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		if _, err := a.Authenticate(ctx, header, "127.0.0.1"); err == nil {
			b.Fatal("bad checksum accepted")
		}
	}
}

// A well-formed key that is not in the store costs two lookups (current,
// then previous secret hash).
func BenchmarkAuthenticateUnknownKey(b *testing.B) {
	a, _ := benchAuth(b)
	other, _ := keys.New(keys.KindSecret, true)
	header := "Bearer " + other
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		if _, err := a.Authenticate(ctx, header, "127.0.0.1"); err == nil {
			b.Fatal("unknown key accepted")
		}
	}
}

// The success path with the credential cache on: after the first request,
// parse, hash, a cache hit (a copy of the snapshot), expand permissions,
// note the use. No store access.
func BenchmarkAuthenticateSecretKeyCached(b *testing.B) {
	a, token := benchAuth(b)
	a.Cache = credcache.New(credcache.Options{TTL: time.Hour})
	header := "Bearer " + token
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		p, err := a.Authenticate(ctx, header, "127.0.0.1")
		if err != nil {
			b.Fatal(err)
		}
		sinkPrincipal = p
	}
}

// An unknown (forged) key with the cache on: a negative entry after the
// first request.
func BenchmarkAuthenticateUnknownKeyCached(b *testing.B) {
	a, _ := benchAuth(b)
	a.Cache = credcache.New(credcache.Options{TTL: time.Hour})
	other, _ := keys.New(keys.KindSecret, true)
	header := "Bearer " + other
	ctx := context.Background()
	b.ReportAllocs()
	defer cputime.Report(b, cputime.Process())
	for b.Loop() {
		if _, err := a.Authenticate(ctx, header, "127.0.0.1"); err == nil {
			b.Fatal("unknown key accepted")
		}
	}
}
