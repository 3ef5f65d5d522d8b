// Command seed puts N secret keys on an existing account of a store, fast, for
// load.sh's verify_uncached row (verify of random keys among many, most of
// them missing the credential cache). It is a benchmark tool: built only by
// load.sh (`go build -o X .ci/bench/seed/main.go`); nothing imports it.
//
//	seed -db sqlite:DIR|postgres://… -account acct_seed -mode test -n 1000000 -out secrets.txt
//
// It writes the N secrets to -out, one per line (the wrk script picks among
// them at random), and prints one line:
//
//	SEED store=sqlite n=1000000 seconds=41.2 mint_seconds=6.3
//
// (seconds: all of it, minting the ids and secrets included; not the checks).
//
// Rows are what the store writes for a create: ids, secrets and hints minted
// by internal/keys, hashes by keys.Hash, so verify finds every key. SQLite:
// every key through the store's own InsertKey (its prepared insert), in one
// unit of work (one transaction). PostgreSQL: the first key through InsertKey,
// the others by COPY (pgx CopyFrom) in one transaction, with the live-key
// counter trigger (migration 00008) off for the COPY and the counter moved by
// N at once instead: with it on, COPY updates the account's row once per key
// in one transaction, each update walking the row's versions so far. Then
// VACUUM (ANALYZE), as autovacuum would after such an insert, so that it does
// not run under the load instead. Both stores are then checked: sampled keys
// read back through the store API match the key written through InsertKey
// field by field (but for what is per key), and the account's live_keys
// counter equals its count of keys not deleted.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
)

func main() {
	db := flag.String("db", "", "the store: sqlite:DIR or postgres://… (HSRCPAY_DATABASE_URL's form)")
	account := flag.String("account", "", "an existing account of the store (bootstrap it first)")
	mode := flag.String("mode", "test", "the account's mode: live or test")
	n := flag.Int("n", 1000000, "how many keys")
	out := flag.String("out", "", "file to write the secrets to, one per line")
	sync := flag.String("sqlite-synchronous", "NORMAL", "SQLite's synchronous pragma")
	flag.Parse()
	if *db == "" || *account == "" || *out == "" || *n < 1 || (*mode != "live" && *mode != "test") {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*db, *account, apikey.Mode(*mode), *n, *out, *sync); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

// minter hands out the keys, minted beforehand by mint.
type minter struct {
	account string
	mode    apikey.Mode
	now     time.Time
	ids     []string
	secrets []string // in the order of their hashes (hashes[i] is keys.Hash(secrets[i]))
	hashes  [][]byte
	made    int
}

// mint makes n ids and n secrets, writes the secrets to w, then sorts the
// ids, and the secrets by their hashes: key i takes the i-th id and the i-th
// secret, so that every index on the keys (id; secret_hash; account and
// created_at, id) grows at its end. In random order each insert lands on a
// random page of two or three indexes far larger than the SQLite writer's
// page cache (a million keys: 145 s against 80 s sorted, on this shared 2-core machine). Each key is
// still one the service could have minted: a random id, a random secret.
func mint(m *minter, n int, w *bufio.Writer) error {
	type sh struct {
		secret string
		hash   []byte
	}
	all := make([]sh, n)
	m.ids = make([]string, n)
	for i := range n {
		secret, err := keys.New(keys.KindSecret, m.mode == apikey.Sandbox)
		if err != nil {
			return err
		}
		if m.ids[i], err = keys.NewID(); err != nil {
			return err
		}
		all[i] = sh{secret, keys.Hash(secret)}
		if _, err := w.WriteString(secret + "\n"); err != nil {
			return err
		}
	}
	slices.Sort(m.ids)
	slices.SortFunc(all, func(a, b sh) int { return bytes.Compare(a.hash, b.hash) })
	m.secrets, m.hashes = make([]string, n), make([][]byte, n)
	for i, x := range all {
		m.secrets[i], m.hashes[i] = x.secret, x.hash
	}
	return w.Flush()
}

func (m *minter) next() *apikey.Key {
	i := m.made
	m.made++
	name := fmt.Sprintf("seed %07d", m.made)
	return &apikey.Key{
		ID: m.ids[i], AccountID: m.account, Name: name, NameKey: namekey.Key(name), Type: apikey.TypeSecret,
		SecretHash: m.hashes[i], KeyHint: keys.Hint(m.secrets[i]),
		// As create stores them: permissions sorted, metadata as given.
		Permissions: map[string][]string{"payment": {"create", "read"}, "refund": {"read"}},
		Metadata:    map[string]string{"team": "bench"},
		Status:      apikey.StatusActive,
		CreatedAt:   m.now, UpdatedAt: m.now,
		CreatedBy: apikey.Actor{Kind: apikey.ActorPlatform, ID: "bench seed"},
	}
}

// sample is what check reads back: the first secret, every 100 000th, the last.
func (m *minter) sample() []string {
	var s []string
	for i := 0; i < len(m.secrets); i += 100000 {
		s = append(s, m.secrets[i])
	}
	return append(s, m.secrets[len(m.secrets)-1])
}

func run(dbURL, account string, mode apikey.Mode, n int, out, sync string) error {
	ctx := context.Background()
	kind, loc, err := config.ParseDatabaseURL(dbURL)
	if err != nil {
		return err
	}
	start := time.Now()
	m := &minter{account: account, mode: mode, now: time.Now().UTC().Truncate(time.Microsecond)}
	if err := writeSecrets(out, func(w *bufio.Writer) error { return mint(m, n, w) }); err != nil {
		return err
	}
	minted := time.Since(start).Seconds()
	var st store.Store
	switch kind {
	case config.SQLite:
		s, err := sqlite.Open(ctx, loc, sqlite.Options{Synchronous: sync})
		if err != nil {
			return err
		}
		st = s
	case config.Postgres:
		// The pool's statement_timeout is the store's timeout: the COPY and
		// VACUUM of a million rows need longer than a request.
		s, err := postgres.OpenOptions(ctx, loc, postgres.Options{Timeout: time.Hour})
		if err != nil {
			return err
		}
		st = s
	}
	err = seed(ctx, st, mode, m, n)
	seconds := time.Since(start).Seconds()
	if err == nil {
		if err = check(ctx, st, mode, account, m.sample(), n); err != nil {
			err = fmt.Errorf("check after seeding: %w", err)
		}
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	fmt.Printf("SEED store=%s n=%d seconds=%.1f mint_seconds=%.1f\n", kind, n, seconds, minted)
	return nil
}

// writeSecrets creates path (0600: secrets) and closes it once fill wrote it.
func writeSecrets(path string, fill func(*bufio.Writer) error) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600) //nolint:gosec // the path load.sh gives
	if err != nil {
		return err
	}
	err = fill(bufio.NewWriterSize(f, 1<<20))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// seed inserts the keys m hands out on its account.
func seed(ctx context.Context, st store.Store, mode apikey.Mode, m *minter, n int) error {
	if err := mustHaveAccount(ctx, st.Repo(mode), m.account); err != nil {
		return err
	}
	if s, ok := st.(*postgres.Store); ok {
		return seedPostgres(ctx, s, mode, m, n)
	}
	return st.Repo(mode).InTx(ctx, func(tx store.Tx) error {
		for range n {
			if err := tx.InsertKey(ctx, m.next()); err != nil {
				return err
			}
		}
		return nil
	})
}

func mustHaveAccount(ctx context.Context, r store.Repository, account string) error {
	ok, err := r.AccountExists(ctx, account)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("no account %s: bootstrap it first", account)
	}
	return nil
}

// pgColumns are the columns the store's InsertKey writes (internal/store/postgres insertColumns)
// but allowed_networks, rate_limit and rate_window_seconds: a seeded key has no restriction,
// and the columns' defaults (”, 0, 0) are what InsertKey writes for such a key.
var pgColumns = []string{"id", "account_id", "name", "type", "secret_hash", "permissions", "metadata", "status", "managed", "deleted",
	"last_used_at", "last_used_ip", "expires_at", "created_at", "updated_at", "created_by_kind", "created_by_id", "created_by_request",
	"key_hint", "name_key"}

func seedPostgres(ctx context.Context, s *postgres.Store, mode apikey.Mode, m *minter, n int) error {
	first := m.next()
	if err := s.Repo(mode).InTx(ctx, func(tx store.Tx) error { return tx.InsertKey(ctx, first) }); err != nil {
		return err
	}
	keysTable := pgx.Identifier{postgres.Schemas[mode], "api_keys"}
	accounts := pgx.Identifier{postgres.Schemas[mode], "accounts"}.Sanitize()
	conn, err := s.Pool().Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(ctx) }() // after Commit, a no-op
	if _, err := tx.Exec(ctx, `ALTER TABLE `+keysTable.Sanitize()+` DISABLE TRIGGER api_keys_live_insert`); err != nil {
		return err
	}
	left := n - 1
	copied, err := tx.CopyFrom(ctx, keysTable, pgColumns, pgx.CopyFromFunc(func() ([]any, error) {
		if left == 0 {
			return nil, nil
		}
		left--
		k := m.next()
		return []any{k.ID, k.AccountID, k.Name, k.Type, k.SecretHash, k.Permissions, k.Metadata, k.Status, k.Managed, k.Deleted,
			k.LastUsedAt, k.LastUsedIP, k.ExpiresAt, k.CreatedAt, k.UpdatedAt, k.CreatedBy.Kind, k.CreatedBy.ID, k.CreatedBy.RequestID,
			k.KeyHint, k.NameKey}, nil
	}))
	if err != nil {
		return err
	}
	if copied != int64(n-1) {
		return fmt.Errorf("copied %d keys, want %d", copied, n-1)
	}
	// What the trigger would have done, once: every key copied is not deleted.
	if _, err := tx.Exec(ctx, `UPDATE `+accounts+` SET live_keys = live_keys + $2 WHERE id = $1`, m.account, copied); err != nil {
		return err
	}
	// The copied rows' deferred checks (the account foreign key, migration
	// 00011) run now: ALTER TABLE refuses a table with trigger events pending.
	if _, err := tx.Exec(ctx, `SET CONSTRAINTS ALL IMMEDIATE`); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `ALTER TABLE `+keysTable.Sanitize()+` ENABLE TRIGGER api_keys_live_insert`); err != nil {
		return err
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `VACUUM (ANALYZE) `+keysTable.Sanitize())
	return err
}

// check reads sampled keys back through the store API: each must be found by
// its secret's hash and equal, but for what is per key, the first key (the
// one InsertKey wrote on both stores); and live_keys must count the account's
// keys not deleted, as the triggers keep it.
func check(ctx context.Context, st store.Store, mode apikey.Mode, account string, secrets []string, n int) error {
	r := st.Repo(mode)
	var want *apikey.Key
	for i, s := range secrets {
		k, err := r.KeyBySecretHash(ctx, keys.Hash(s))
		if err != nil {
			return fmt.Errorf("sampled secret %d: %w", i, err)
		}
		if k.NameKey != namekey.Key(k.Name) || k.KeyHint != keys.Hint(s) {
			return fmt.Errorf("key %s: name key or hint not as the store writes them", k.ID)
		}
		c := *k
		c.ID, c.Name, c.NameKey, c.SecretHash, c.KeyHint = "", "", "", nil, ""
		if want == nil {
			want = &c
		} else if !reflect.DeepEqual(want, &c) {
			return fmt.Errorf("key %s differs from the first key, written by InsertKey:\n got  %+v\n want %+v", k.ID, c, *want)
		}
	}
	var live, count int64
	switch s := st.(type) {
	case *sqlite.Store:
		if err := s.DB(mode).QueryRowContext(ctx, `SELECT live_keys, (SELECT count(*) FROM api_keys WHERE account_id = ?1 AND deleted = 0)
			FROM accounts WHERE id = ?1`, account).Scan(&live, &count); err != nil {
			return err
		}
	case *postgres.Store:
		schema := postgres.Schemas[mode]
		if err := s.Pool().QueryRow(ctx, `SELECT live_keys, (SELECT count(*) FROM `+pgx.Identifier{schema, "api_keys"}.Sanitize()+
			` WHERE account_id = $1 AND NOT deleted) FROM `+pgx.Identifier{schema, "accounts"}.Sanitize()+` WHERE id = $1`, account).Scan(&live, &count); err != nil {
			return err
		}
	default:
		return errors.New("unknown store")
	}
	if live != count || count < int64(n) {
		return fmt.Errorf("account %s: live_keys %d, keys not deleted %d (seeded %d)", account, live, count, n)
	}
	return nil
}
