package storetest

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/store"
)

// BenchReads benchmarks the read operations of s's sandbox repository as the
// API asks for them: a page of 20 keys (the default page, and the next one
// by cursor), a page of 100 audit events, one key by id. The account holds
// 120 keys, each with a create's audit event. report is called after each
// sub-benchmark's loop (cputime.Report, where the platform has it).
func BenchReads(b *testing.B, s store.Store, report func(b *testing.B) func()) {
	ctx := context.Background()
	const acct = "acct_bench_reads"
	repo := s.Repo(apikey.Sandbox)
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := store.CreateAccount(ctx, repo, acct, now); err != nil {
		b.Fatal(err)
	}
	var ids []string
	for i := range 120 {
		id := fmt.Sprintf("key_%06d", i)
		ids = append(ids, id)
		hash := sha256.Sum256([]byte(id))
		k := &apikey.Key{
			ID: id, AccountID: acct, Name: fmt.Sprintf("seed %d", i), Type: apikey.TypeSecret,
			SecretHash: hash[:], Status: apikey.StatusActive, KeyHint: "sk_test_…abcd",
			Permissions: map[string][]string{"payment": {"create", "read"}, "refund": {"read"}},
			Metadata:    map[string]string{"team": "bench"},
			CreatedBy:   apikey.Actor{Kind: apikey.ActorKey, ID: "key_managed", RequestID: "req_bench"},
			CreatedAt:   now.Add(time.Duration(i) * time.Millisecond), UpdatedAt: now,
		}
		err := repo.InTx(ctx, func(tx store.Tx) error {
			if err := tx.LockAccount(ctx, acct); err != nil {
				return err
			}
			if err := tx.InsertKey(ctx, k); err != nil {
				return err
			}
			return tx.AppendAuditEvent(ctx, &audit.Event{
				ID: fmt.Sprintf("evt_%06d", i), AccountID: acct, Action: "api_key.created", KeyID: id,
				Actor: k.CreatedBy, ClientIP: "192.0.2.1", CreatedAt: k.CreatedAt,
				Changes: map[string]any{
					"name": k.Name, "type": k.Type, "status": k.Status, "managed": false, "expires_at": nil,
					"key_hint": k.KeyHint, "metadata": map[string]any{"team": "bench"},
					"permissions": map[string]any{"payment": []any{"create", "read"}, "refund": []any{"read"}},
				},
			})
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	run := func(name string, want int, op func() (int, error)) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			defer report(b)()
			for b.Loop() {
				n, err := op()
				if err != nil {
					b.Fatal(err)
				}
				if n != want {
					b.Fatalf("%s: %d rows, want %d", name, n, want)
				}
			}
		})
	}
	run("list_keys", 21, func() (int, error) {
		ks, err := repo.ListKeys(ctx, store.KeyFilter{AccountID: acct, Now: now, Limit: 21})
		return len(ks), err
	})
	run("list_keys_cursor_active", 21, func() (int, error) {
		ks, err := repo.ListKeys(ctx, store.KeyFilter{AccountID: acct, Status: apikey.StatusActive, Now: now, Limit: 21,
			After: &store.KeyCursor{CreatedAt: now.Add(19 * time.Millisecond), ID: ids[19]}})
		return len(ks), err
	})
	run("list_audit_events", 101, func() (int, error) {
		es, err := repo.ListAuditEvents(ctx, store.AuditFilter{AccountID: acct, Limit: 101})
		return len(es), err
	})
	run("get_key", 1, func() (int, error) {
		_, err := repo.GetKey(ctx, ids[7])
		return 1, err
	})
	run("account_exists", 1, func() (int, error) {
		ok, err := repo.AccountExists(ctx, acct)
		if !ok {
			return 0, err
		}
		return 1, err
	})
}

// BenchLookupKeys is how many keys a benchmark of lookups among many keys
// seeds: HSRCPAY_BENCH_LOOKUP_KEYS, 10 000 by default (make bench-go, on a
// shared machine); 1000000 for the figures the credential cache's docs
// quote. A value below least (what the benchmark samples from) is refused.
func BenchLookupKeys(b testing.TB, least int) int {
	v := os.Getenv("HSRCPAY_BENCH_LOOKUP_KEYS")
	if v == "" {
		return 10_000
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < least {
		b.Fatalf("HSRCPAY_BENCH_LOOKUP_KEYS=%q: want a number of keys, at least %d", v, least)
	}
	return n
}
