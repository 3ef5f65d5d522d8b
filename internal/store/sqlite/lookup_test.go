package sqlite_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

// TestReadersMapTheFile: the readers read the database through a memory map
// (the driver honours mmap_size: a build without it would silently read
// through pread again), and what they read through it is what was committed
// last, across checkpoints that rewrite the mapped pages, a file that grows
// past what was mapped, rotations and revocations: a revoked key is never
// read as live.
func TestReadersMapTheFile(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	const mode = apikey.Sandbox
	n, err := sqlite.ReaderMmapSize(st, mode)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1<<30 || n > sqlite.ReaderMmapBytes {
		t.Fatalf("a reader's mmap_size is %d, want (1 GiB, %d]", n, sqlite.ReaderMmapBytes)
	}

	repo := st.Repo(mode)
	now := time.Now().UTC()
	secret := func(i, gen int) []byte { return keys.Hash(fmt.Sprintf("mmap-%d-%d", i, gen)) }
	checkpoint := func() {
		t.Helper()
		// TRUNCATE: every page is in the file (the mapped part) and none in the WAL.
		if _, err := st.DB(mode).ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`); err != nil {
			t.Fatal(err)
		}
	}
	insert := func(lo, hi int) {
		t.Helper()
		err := repo.InTx(ctx, func(tx store.Tx) error {
			if lo == 0 {
				if err := tx.CreateAccount(ctx, "acct_mmap", now); err != nil {
					return err
				}
			}
			for i := lo; i < hi; i++ {
				k := &apikey.Key{
					ID: fmt.Sprintf("key_m%022d", i), AccountID: "acct_mmap", Name: "mmap " + strconv.Itoa(i), Type: apikey.TypeSecret,
					SecretHash: secret(i, 0), KeyHint: "sk_test_…abcd", Status: apikey.StatusActive,
					Permissions: map[string][]string{"payment": {"read"}}, CreatedAt: now, UpdatedAt: now,
				}
				if err := tx.InsertKey(ctx, k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// lookup checks key i's state as read by its hash of generation gen.
	lookup := func(i, gen int, deleted bool, current []byte) {
		t.Helper()
		k, err := repo.KeyBySecretHash(ctx, secret(i, gen))
		if err != nil {
			t.Fatalf("key %d, secret %d: %v", i, gen, err)
		}
		if k.ID != fmt.Sprintf("key_m%022d", i) || k.Deleted != deleted || string(k.SecretHash) != string(current) {
			t.Fatalf("key %d, secret %d: read %s deleted=%v, want deleted=%v and its current secret", i, gen, k.ID, k.Deleted, deleted)
		}
	}

	const first = 2000
	insert(0, first)
	checkpoint()
	for i := range first {
		lookup(i, 0, false, secret(i, 0))
	}
	// Rotate every third key (its previous secret stays), revoke every
	// other: rows the readers have mapped change in the file.
	for i := 0; i < first; i += 2 {
		_, err := store.UpdateKey(ctx, repo, fmt.Sprintf("key_m%022d", i), func(k *apikey.Key) error {
			if i%3 == 0 {
				k.PrevSecretHash, k.SecretHash = k.SecretHash, secret(i, 1)
			}
			k.Deleted = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	checkpoint()
	insert(first, 3*first) // the file grows past what the readers mapped
	checkpoint()
	for i := range 3 * first {
		switch {
		case i >= first:
			lookup(i, 0, false, secret(i, 0))
		case i%2 == 1:
			lookup(i, 0, false, secret(i, 0))
		case i%3 == 0:
			lookup(i, 0, true, secret(i, 1)) // by its previous secret
			lookup(i, 1, true, secret(i, 1))
		default:
			lookup(i, 0, true, secret(i, 0))
		}
	}
	if _, err := repo.KeyBySecretHash(context.Background(), secret(0, 9)); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a hash no key has: %v, want ErrNotFound", err)
	}
}

// TestLookupCurrentSecretWins: a hash that is one key's current secret and
// another's previous one (nothing in the schema forbids it, though fresh
// random secrets never meet) finds the key whose current secret it is, the
// only row the lookup returns.
func TestLookupCurrentSecretWins(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	repo := st.Repo(apikey.Live)
	now := time.Now().UTC()
	shared := keys.Hash("shared")
	err = repo.InTx(ctx, func(tx store.Tx) error {
		if err := tx.CreateAccount(ctx, "acct_w", now); err != nil {
			return err
		}
		// key_a (inserted first: lower rowid) holds it as its previous secret.
		for _, k := range []*apikey.Key{
			{ID: "key_a", SecretHash: keys.Hash("a")},
			{ID: "key_b", SecretHash: shared},
		} {
			k.AccountID, k.Name, k.Type, k.Status, k.CreatedAt, k.UpdatedAt = "acct_w", k.ID, apikey.TypeSecret, apikey.StatusActive, now, now
			if err := tx.InsertKey(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	grace := now.Add(time.Hour)
	if _, err := store.UpdateKey(ctx, repo, "key_a", func(k *apikey.Key) error {
		k.PrevSecretHash, k.PrevSecretExpiresAt = shared, &grace
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	k, err := repo.KeyBySecretHash(ctx, shared)
	if err != nil || k.ID != "key_b" {
		t.Fatalf("KeyBySecretHash(shared) = %v, %v; want key_b, whose current secret it is", k, err)
	}
	n, err := sqlite.LookupRows(st, apikey.Live, shared)
	if err != nil || n != 1 {
		t.Fatalf("the lookup returned %d rows (%v), want 1", n, err)
	}
}
