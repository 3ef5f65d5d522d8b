// Package storetest is the conformance suite every store.Store implementation
// must pass, plus helpers for tests that need a throwaway PostgreSQL database.
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store { … a fresh, empty store … })
//	}
//
// The store open returns must also implement Raw (direct SQL), which the
// tests that look or change rows behind the store's back use.
//
// Timestamps are compared to the microsecond: PostgreSQL keeps microseconds,
// SQLite nanoseconds.
package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Run runs the suite, its subtests in parallel. open must return a fresh,
// empty store each call (it is called from parallel subtests); Run closes the
// store when the subtest ends.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"Ping", testPing},
		{"Accounts", testAccounts},
		{"InsertAndGet", testInsertAndGet},
		{"NotFound", testNotFound},
		{"InsertKeyConflicts", testInsertKeyConflicts},
		{"NameKeys", testNameKeys},
		{"InsertKeyUnknownAccount", testInsertKeyUnknownAccount},
		{"ListManagedKeys", testListManagedKeys},
		{"UpdateKeyWritesFields", testUpdateKeyWritesFields},
		{"UpdateKeyConflicts", testUpdateKeyConflicts},
		{"UpdateKeyFnErrorAborts", testUpdateKeyFnErrorAborts},
		{"UpdateKeyConcurrent", testUpdateKeyConcurrent},
		{"PreviousSecret", testPreviousSecret},
		{"LookupCurrentSecretWins", testLookupCurrentSecretWins},
		{"InsertKeyConcurrentDistinctNames", testInsertKeyConcurrentDistinctNames},
		{"InsertKeyConcurrentSameName", testInsertKeyConcurrentSameName},
		{"RecordUsageForwardOnly", testRecordUsageForwardOnly},
		{"RecordUsageConcurrent", testRecordUsageConcurrent},
		{"ModesIsolated", testModesIsolated},
		{"KeyHint", testKeyHint},
		{"AllowedNetworks", testAllowedNetworks},
		{"RateLimit", testRateLimit},
		{"Credits", testCredits},
		{"SpendCredits", testSpendCredits},
		{"SpendCreditsConcurrent", testSpendCreditsConcurrent},
		{"SpendCreditsMixedCosts", testSpendCreditsMixedCosts},
		{"CreditRefills", testCreditRefills},
		{"KeyCapReached", testKeyCapReached},
		{"ListKeysFilters", testListKeysFilters},
		{"ListKeysPagination", testListKeysPagination},
		{"AuditChain", testAuditChain},
		{"AuditAppendAborted", testAuditAppendAborted},
		{"AuditAppendErrors", testAuditAppendErrors},
		{"AuditConcurrentAppends", testAuditConcurrentAppends},
		{"AuditTampering", testAuditTampering},
		{"ListAuditEvents", testListAuditEvents},
		{"AuditModesIsolated", testAuditModesIsolated},
		{"DeleteAccountWithEvents", testDeleteAccountWithEvents},
		{"UnitsConcurrentOutcomes", testUnitsConcurrentOutcomes},
		{"UnitCancelled", testUnitCancelled},
		{"Idempotency", testIdempotency},
		{"IdempotencyConcurrentClaims", testIdempotencyConcurrentClaims},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

// base has nanoseconds and a non-UTC zone: stores must return UTC and keep
// at least microseconds.
var base = time.Date(2026, 3, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+5", 5*3600))

func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

func strPtr(p *string) string {
	if p == nil {
		return "nil"
	}
	return strconv.Quote(*p)
}

var hashSeq atomic.Int64

// newHash returns a distinct 32-byte hash that includes 0x00 and 0xff bytes
// somewhere across calls (binary, not text).
func newHash() []byte {
	h := sha256.Sum256([]byte(fmt.Sprintf("secret-%d-%d", hashSeq.Add(1), rand.Int64()))) //nolint:gosec // test data, not a secret: hashSeq makes it unique, rand only spreads the bytes
	return h[:]
}

func newKey(id, account, name string) *apikey.Key {
	return &apikey.Key{
		ID:          id,
		AccountID:   account,
		Name:        name,
		Type:        apikey.TypeSecret,
		SecretHash:  newHash(),
		Permissions: map[string][]string{"api_keys": {"read"}},
		Metadata:    map[string]string{},
		Status:      apikey.StatusActive,
		Managed:     false,
		CreatedAt:   at(0),
		UpdatedAt:   at(0),
	}
}

func clone(k *apikey.Key) *apikey.Key {
	c := *k
	c.SecretHash = bytes.Clone(k.SecretHash)
	c.Permissions = maps.Clone(k.Permissions)
	c.Metadata = maps.Clone(k.Metadata)
	c.AllowedNetworks = slices.Clone(k.AllowedNetworks)
	return &c
}

func mustAccount(t *testing.T, r store.Repository, id string) {
	t.Helper()
	if err := store.CreateAccount(t.Context(), r, id, at(0)); err != nil {
		t.Fatalf("CreateAccount(%q): %v", id, err)
	}
}

func mustInsert(t *testing.T, r store.Repository, k *apikey.Key) {
	t.Helper()
	if err := store.InsertKey(t.Context(), r, clone(k)); err != nil {
		t.Fatalf("InsertKey(%s, %q): %v", k.ID, k.Name, err)
	}
}

func mustGet(t *testing.T, r store.Repository, id string) *apikey.Key {
	t.Helper()
	k, err := r.GetKey(t.Context(), id)
	if err != nil {
		t.Fatalf("GetKey(%s): %v", id, err)
	}
	return k
}

func mustUpdate(t *testing.T, r store.Repository, id string, fn func(*apikey.Key)) *apikey.Key {
	t.Helper()
	k, err := store.UpdateKey(t.Context(), r, id, func(k *apikey.Key) error { fn(k); return nil })
	if err != nil {
		t.Fatalf("UpdateKey(%s): %v", id, err)
	}
	return k
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Errorf("%s: err = %v, want %v", what, err, want)
	}
}

// sameTime allows for stores that keep microseconds only.
func sameTime(a, b time.Time) bool {
	d := a.Sub(b)
	return d > -time.Microsecond && d < time.Microsecond
}

func checkTime(t *testing.T, field string, got, want time.Time) {
	t.Helper()
	checkTimeIn(t, field, got, want, true)
}

// checkTimeIn checks the instant, and with utc that got is in UTC as reads
// must return it.
func checkTimeIn(t *testing.T, field string, got, want time.Time, utc bool) {
	t.Helper()
	if !sameTime(got, want) {
		t.Errorf("%s = %v, want %v (to the microsecond)", field, got.UTC(), want.UTC())
	}
	if utc && got.Location() != time.UTC {
		t.Errorf("%s location = %v, want UTC", field, got.Location())
	}
}

func checkTimePtr(t *testing.T, field string, got, want *time.Time) {
	t.Helper()
	checkTimePtrIn(t, field, got, want, true)
}

func checkTimePtrIn(t *testing.T, field string, got, want *time.Time, utc bool) {
	t.Helper()
	switch {
	case got == nil && want == nil:
	case got == nil || want == nil:
		t.Errorf("%s = %v, want %v", field, got, want)
	default:
		checkTimeIn(t, field, *got, *want, utc)
	}
}

// checkKey compares every field of a key read from the store. Nil maps in
// want stand for empty ones, and got's maps must never be nil (a nil map
// marshals to JSON null); got's times must be in UTC.
func checkKey(t *testing.T, what string, got, want *apikey.Key) {
	t.Helper()
	checkKeyIn(t, what, got, want, true)
}

// checkResult is checkKey for UpdateKey's result, which may keep the time
// zones fn set.
func checkResult(t *testing.T, what string, got, want *apikey.Key) {
	t.Helper()
	checkKeyIn(t, what, got, want, false)
}

func checkKeyIn(t *testing.T, what string, got, want *apikey.Key, utc bool) {
	t.Helper()
	if got == nil {
		t.Fatalf("%s: key is nil", what)
	}
	eq := func(field string, g, w any) {
		t.Helper()
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: %s = %#v, want %#v", what, field, g, w)
		}
	}
	eq("ID", got.ID, want.ID)
	eq("AccountID", got.AccountID, want.AccountID)
	eq("Name", got.Name, want.Name)
	eq("Type", got.Type, want.Type)
	eq("KeyHint", got.KeyHint, want.KeyHint)
	if !bytes.Equal(got.SecretHash, want.SecretHash) {
		t.Errorf("%s: SecretHash = %x, want %x", what, got.SecretHash, want.SecretHash)
	}
	if !bytes.Equal(got.PrevSecretHash, want.PrevSecretHash) { // nil and empty alike
		t.Errorf("%s: PrevSecretHash = %x, want %x", what, got.PrevSecretHash, want.PrevSecretHash)
	}
	checkTimePtrIn(t, what+": PrevSecretExpiresAt", got.PrevSecretExpiresAt, want.PrevSecretExpiresAt, utc)
	if got.Permissions == nil || got.Metadata == nil {
		t.Errorf("%s: nil map: Permissions %#v, Metadata %#v", what, got.Permissions, got.Metadata)
	}
	wp, wm := want.Permissions, want.Metadata
	if wp == nil {
		wp = map[string][]string{}
	}
	if wm == nil {
		wm = map[string]string{}
	}
	if len(got.Permissions) != 0 || len(wp) != 0 {
		eq("Permissions", got.Permissions, wp)
	}
	if len(got.Metadata) != 0 || len(wm) != 0 {
		eq("Metadata", got.Metadata, wm)
	}
	eq("Status", got.Status, want.Status)
	eq("AllowedNetworks", apikey.NetworkStrings(got.AllowedNetworks), apikey.NetworkStrings(want.AllowedNetworks))
	eq("RateLimit", got.RateLimit, want.RateLimit)
	eq("Credits", got.Credits.String()+" at "+creditsAt(got.Credits), want.Credits.String()+" at "+creditsAt(want.Credits))
	eq("Managed", got.Managed, want.Managed)
	eq("Deleted", got.Deleted, want.Deleted)
	checkTimePtrIn(t, what+": LastUsedAt", got.LastUsedAt, want.LastUsedAt, utc)
	if (got.LastUsedIP == nil) != (want.LastUsedIP == nil) || got.LastUsedIP != nil && *got.LastUsedIP != *want.LastUsedIP {
		t.Errorf("%s: LastUsedIP = %s, want %s", what, strPtr(got.LastUsedIP), strPtr(want.LastUsedIP))
	}
	checkTimePtrIn(t, what+": ExpiresAt", got.ExpiresAt, want.ExpiresAt, utc)
	checkTimeIn(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt, utc)
	checkTimeIn(t, what+": UpdatedAt", got.UpdatedAt, want.UpdatedAt, utc)
}

func testPing(t *testing.T, s store.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if s.Repo(apikey.Live) == nil || s.Repo(apikey.Sandbox) == nil {
		t.Fatal("Repo returned nil")
	}
}

func testAccounts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	if ok, err := r.AccountExists(ctx, "acct_1"); err != nil || ok {
		t.Fatalf("AccountExists before create = %v, %v; want false, nil", ok, err)
	}
	mustAccount(t, r, "acct_1")
	if ok, err := r.AccountExists(ctx, "acct_1"); err != nil || !ok {
		t.Fatalf("AccountExists after create = %v, %v; want true, nil", ok, err)
	}
	wantErr(t, "CreateAccount again", store.CreateAccount(ctx, r, "acct_1", at(time.Hour)), store.ErrAccountExists)
	if ok, err := r.AccountExists(ctx, "acct_2"); err != nil || ok {
		t.Errorf("AccountExists(other) = %v, %v; want false, nil", ok, err)
	}
}

func testInsertAndGet(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")

	full := newKey("key_full", "acct_1", "Full key")
	full.Type = apikey.TypePublishable
	full.SecretHash = append([]byte{0x00, 0xff, 0x00}, newHash()...) // NULs and high bytes
	full.KeyHint = "pk_test_…3kP9"
	full.Permissions = map[string][]string{"api_keys": {"read", "write"}, "payments": {"read"}, "refunds": {}}
	full.Metadata = map[string]string{"env": "ci", "owner": "ünïcode ✓", "empty": ""}
	full.Status = apikey.StatusInactive
	full.Managed = true
	full.LastUsedAt = ptr(at(2 * time.Minute))
	full.LastUsedIP = ptr("2001:db8::1")
	full.ExpiresAt = ptr(at(30 * 24 * time.Hour))
	full.CreatedAt = at(time.Second)
	full.UpdatedAt = at(time.Minute)
	mustInsert(t, r, full)

	bare := newKey("key_bare", "acct_1", "Bare key")
	bare.Permissions, bare.Metadata = nil, nil
	if err := store.InsertKey(ctx, r, bare); err != nil { // not a clone: nil maps reach the store
		t.Fatalf("InsertKey(nil maps): %v", err)
	}
	bare.Permissions, bare.Metadata = nil, nil

	for _, want := range []*apikey.Key{full, bare} {
		checkKey(t, "GetKey", mustGet(t, r, want.ID), want)
		got, err := r.KeyBySecretHash(ctx, want.SecretHash)
		if err != nil {
			t.Fatalf("KeyBySecretHash(%s): %v", want.ID, err)
		}
		checkKey(t, "KeyBySecretHash", got, want)
	}

	// The store hands out copies: changing one must not change the next read.
	k := mustGet(t, r, full.ID)
	k.Name, k.Metadata["env"], k.SecretHash[0] = "changed", "changed", 0x42
	checkKey(t, "GetKey after mutating an earlier result", mustGet(t, r, full.ID), full)
}

func testNotFound(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustInsert(t, r, newKey("key_1", "acct_1", "one"))

	k, err := r.GetKey(ctx, "key_missing")
	wantErr(t, "GetKey(missing)", err, store.ErrNotFound)
	if k != nil {
		t.Errorf("GetKey(missing) key = %+v, want nil", k)
	}
	_, err = r.KeyBySecretHash(ctx, newHash())
	wantErr(t, "KeyBySecretHash(missing)", err, store.ErrNotFound)
	_, err = r.KeyBySecretHash(ctx, []byte{})
	wantErr(t, "KeyBySecretHash(empty)", err, store.ErrNotFound)
	called := false
	_, err = store.UpdateKey(ctx, r, "key_missing", func(*apikey.Key) error { called = true; return nil })
	wantErr(t, "UpdateKey(missing)", err, store.ErrNotFound)
	if called {
		t.Error("UpdateKey(missing) called fn")
	}
	if ks, err := r.ListManagedKeys(ctx, "acct_missing"); err != nil || len(ks) != 0 {
		t.Errorf("ListManagedKeys(missing account) = %v, %v; want none", ks, err)
	}
}

func testInsertKeyConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_2")
	a := newKey("key_a", "acct_1", "primary")
	mustInsert(t, r, a)

	wantErr(t, "same account, same name", store.InsertKey(ctx, r, newKey("key_b", "acct_1", "primary")), store.ErrDuplicateName)
	if _, err := r.GetKey(ctx, "key_b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("rejected key_b was stored (GetKey err = %v)", err)
	}
	mustInsert(t, r, newKey("key_c", "acct_2", "primary")) // other account: fine
	mustInsert(t, r, newKey("key_d", "acct_1", "Primary")) // other name: fine

	dupID := newKey("key_a", "acct_1", "another name")
	wantErr(t, "same id", store.InsertKey(ctx, r, dupID), store.ErrDuplicateKeyID)
	dupHash := newKey("key_e", "acct_1", "yet another name")
	dupHash.SecretHash = bytes.Clone(a.SecretHash)
	wantErr(t, "same secret hash", store.InsertKey(ctx, r, dupHash), store.ErrDuplicateKeyID)
	dupHash.SecretHash = bytes.Clone(a.SecretHash)
	dupHash.AccountID = "acct_2"
	wantErr(t, "same secret hash, other account", store.InsertKey(ctx, r, dupHash), store.ErrDuplicateKeyID)
	checkKey(t, "key_a after rejected inserts", mustGet(t, r, "key_a"), a)

	// Deleted keys free their name, any number of times.
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.Deleted = true })
	mustInsert(t, r, newKey("key_f", "acct_1", "primary"))
	mustUpdate(t, r, "key_f", func(k *apikey.Key) { k.Deleted = true })
	g := newKey("key_g", "acct_1", "primary")
	mustInsert(t, r, g)
	wantErr(t, "name of the live key again", store.InsertKey(ctx, r, newKey("key_h", "acct_1", "primary")), store.ErrDuplicateName)
	deleted := newKey("key_i", "acct_1", "primary")
	deleted.Deleted = true
	mustInsert(t, r, deleted) // a key inserted deleted takes no name
	checkKey(t, "key_g", mustGet(t, r, "key_g"), g)
}

func testInsertKeyUnknownAccount(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	err := store.InsertKey(ctx, r, newKey("key_1", "acct_missing", "one"))
	if !errors.Is(err, store.ErrNoAccount) {
		t.Fatalf("InsertKey for a missing account: err = %v, want ErrNoAccount", err)
	}
	for _, e := range []error{store.ErrDuplicateName, store.ErrDuplicateKeyID, store.ErrAccountExists, store.ErrNotFound} {
		if errors.Is(err, e) {
			t.Errorf("InsertKey for a missing account: err = %v, a conflict error", err)
		}
	}
	if _, err := r.GetKey(ctx, "key_1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("key of a missing account was stored (GetKey err = %v)", err)
	}
	if ok, _ := r.AccountExists(ctx, "acct_missing"); ok {
		t.Error("InsertKey created the account")
	}
}

func testListManagedKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_2")
	add := func(id, account, typ string, managed, deleted bool) *apikey.Key {
		k := newKey(id, account, id)
		k.Type, k.Managed, k.Deleted = typ, managed, deleted
		mustInsert(t, r, k)
		return k
	}
	pubA := add("key_A", "acct_1", apikey.TypePublishable, true, false)
	secLower := add("key_b", "acct_1", apikey.TypeSecret, true, false)
	secUpper := add("key_B", "acct_1", apikey.TypeSecret, true, false)
	add("key_c", "acct_1", apikey.TypeSecret, false, false) // not managed
	add("key_d", "acct_1", apikey.TypeSecret, true, true)   // deleted
	add("key_e", "acct_2", apikey.TypeSecret, true, false)  // other account

	got, err := r.ListManagedKeys(ctx, "acct_1")
	if err != nil {
		t.Fatalf("ListManagedKeys: %v", err)
	}
	// SECRET before PUBLISHABLE, then ids bytewise ("key_B" < "key_b").
	want := []*apikey.Key{secUpper, secLower, pubA}
	var gotIDs, wantIDs []string
	for _, k := range got {
		gotIDs = append(gotIDs, k.ID)
	}
	for _, k := range want {
		wantIDs = append(wantIDs, k.ID)
	}
	if !slices.Equal(gotIDs, wantIDs) {
		t.Fatalf("ListManagedKeys ids = %v, want %v", gotIDs, wantIDs)
	}
	for i := range want {
		checkKey(t, "ListManagedKeys", got[i], want[i])
	}

	mustUpdate(t, r, "key_b", func(k *apikey.Key) { k.Deleted = true })
	got, err = r.ListManagedKeys(ctx, "acct_1")
	if err != nil || len(got) != 2 {
		t.Errorf("ListManagedKeys after deleting key_b = %d keys, %v; want 2", len(got), err)
	}
}

func testUpdateKeyWritesFields(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	orig := newKey("key_1", "acct_1", "before")
	orig.Managed = true
	orig.Metadata = map[string]string{"a": "1"}
	mustInsert(t, r, orig)
	if err := r.RecordUsage(ctx, []store.Usage{{KeyID: "key_1", At: at(time.Minute), IP: "192.0.2.1"}}); err != nil {
		t.Fatalf("RecordUsage: %v", err)
	}

	want := clone(orig)
	want.LastUsedAt, want.LastUsedIP = ptr(at(time.Minute)), ptr("192.0.2.1")
	want.Name = "after"
	want.SecretHash = newHash()
	want.Permissions = map[string][]string{"payments": {"read", "write"}}
	want.Metadata = map[string]string{"b": "2"}
	want.Status = apikey.StatusInactive
	want.ExpiresAt = ptr(at(48 * time.Hour))
	want.UpdatedAt = at(time.Hour)

	var saw *apikey.Key
	got := mustUpdate(t, r, "key_1", func(k *apikey.Key) {
		saw = clone(k)
		k.Name, k.SecretHash, k.Permissions, k.Metadata = want.Name, bytes.Clone(want.SecretHash), want.Permissions, want.Metadata
		k.Status, k.ExpiresAt, k.UpdatedAt = want.Status, want.ExpiresAt, want.UpdatedAt
	})
	before := clone(orig)
	before.LastUsedAt, before.LastUsedIP = want.LastUsedAt, want.LastUsedIP
	checkKey(t, "fn's argument", saw, before)
	checkResult(t, "UpdateKey result", got, want)
	checkKey(t, "GetKey after UpdateKey", mustGet(t, r, "key_1"), want)

	_, err := r.KeyBySecretHash(ctx, orig.SecretHash)
	wantErr(t, "KeyBySecretHash(old hash)", err, store.ErrNotFound)
	byHash, err := r.KeyBySecretHash(ctx, want.SecretHash)
	if err != nil {
		t.Fatalf("KeyBySecretHash(new hash): %v", err)
	}
	checkKey(t, "KeyBySecretHash(new hash)", byHash, want)

	// Clearing: expires_at back to NULL, maps to empty.
	want.ExpiresAt = nil
	want.Permissions, want.Metadata = map[string][]string{}, map[string]string{}
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.ExpiresAt, k.Permissions, k.Metadata = nil, nil, nil })
	checkKey(t, "GetKey after clearing", mustGet(t, r, "key_1"), want)

	// Soft delete: the key stays readable, by id and by hash, marked deleted.
	want.Deleted = true
	want.UpdatedAt = at(2 * time.Hour)
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.Deleted, k.UpdatedAt = true, want.UpdatedAt })
	checkKey(t, "GetKey after delete", mustGet(t, r, "key_1"), want)
	byHash, err = r.KeyBySecretHash(ctx, want.SecretHash)
	if err != nil {
		t.Fatalf("KeyBySecretHash(deleted key): %v", err)
	}
	checkKey(t, "KeyBySecretHash(deleted key)", byHash, want)
}

func testUpdateKeyConflicts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	a, b := newKey("key_a", "acct_1", "one"), newKey("key_b", "acct_1", "two")
	mustInsert(t, r, a)
	mustInsert(t, r, b)

	_, err := store.UpdateKey(ctx, r, "key_b", func(k *apikey.Key) error { k.Name = "one"; return nil })
	wantErr(t, "rename onto an active key's name", err, store.ErrDuplicateName)
	_, err = store.UpdateKey(ctx, r, "key_b", func(k *apikey.Key) error { k.SecretHash = bytes.Clone(a.SecretHash); return nil })
	wantErr(t, "take another key's secret hash", err, store.ErrDuplicateKeyID)
	checkKey(t, "key_b after rejected updates", mustGet(t, r, "key_b"), b)

	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.Deleted = true })
	mustUpdate(t, r, "key_b", func(k *apikey.Key) { k.Name = "one" }) // the name is free now
	_, err = store.UpdateKey(ctx, r, "key_a", func(k *apikey.Key) error { k.Deleted = false; return nil })
	wantErr(t, "undelete onto an active key's name", err, store.ErrDuplicateName)
	if k := mustGet(t, r, "key_a"); !k.Deleted {
		t.Error("rejected undelete was written")
	}
}

type fnError struct{ msg string }

func (e *fnError) Error() string { return e.msg }

func testUpdateKeyFnErrorAborts(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	orig := newKey("key_1", "acct_1", "name")
	mustInsert(t, r, orig)

	sentinel := &fnError{"refused"}
	got, err := store.UpdateKey(ctx, r, "key_1", func(k *apikey.Key) error {
		k.Name, k.SecretHash, k.Deleted, k.Status = "changed", newHash(), true, apikey.StatusInactive
		k.Metadata["x"] = "y"
		return fmt.Errorf("wrapped: %w", sentinel)
	})
	var fe *fnError
	if !errors.As(err, &fe) || fe != sentinel {
		t.Fatalf("UpdateKey err = %#v, want fn's error (errors.As to *fnError)", err)
	}
	if err.Error() != "wrapped: refused" {
		t.Errorf("UpdateKey err = %q, want fn's error unchanged", err)
	}
	if got != nil {
		t.Errorf("UpdateKey returned key %+v with an error", got)
	}
	checkKey(t, "GetKey after aborted update", mustGet(t, r, "key_1"), orig)

	plain := errors.New("plain")
	if _, err := store.UpdateKey(ctx, r, "key_1", func(*apikey.Key) error { return plain }); err != plain { //nolint:errorlint // the contract is fn's error itself, not one wrapping it
		t.Errorf("UpdateKey err = %v, want fn's error itself", err)
	}

	// The aborted updates released their lock: another update goes through promptly.
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := store.UpdateKey(ctx2, r, "key_1", func(k *apikey.Key) error { k.Name = "later"; return nil }); err != nil {
		t.Fatalf("UpdateKey after aborted ones: %v", err)
	}
	if k := mustGet(t, r, "key_1"); k.Name != "later" {
		t.Errorf("Name = %q, want later", k.Name)
	}
}

// testUpdateKeyConcurrent runs many read-modify-write updates of one key at
// once. Each fn records the hash it read and writes its own; under a real
// write lock the fns run one at a time, each sees the previous one's write,
// and the last to run is what remains.
func testUpdateKeyConcurrent(t *testing.T, s store.Store) {
	const n = 50
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	orig := newKey("key_1", "acct_1", "name")
	orig.Metadata = map[string]string{"n": "0"}
	mustInsert(t, r, orig)

	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = newHash()
	}
	type step struct {
		seq, who int
		saw      []byte
		sawN     string
	}
	var (
		seq     atomic.Int64
		mu      sync.Mutex
		steps   []step
		results = make([]*apikey.Key, n)
		errs    = make([]error, n)
		calls   = make([]int, n)
		start   = make(chan struct{})
		wg      sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = store.UpdateKey(ctx, r, "key_1", func(k *apikey.Key) error {
				sq := int(seq.Add(1))
				mu.Lock()
				calls[i]++
				steps = append(steps, step{seq: sq, who: i, saw: bytes.Clone(k.SecretHash), sawN: k.Metadata["n"]})
				mu.Unlock()
				cnt, err := strconv.Atoi(k.Metadata["n"])
				if err != nil {
					return err
				}
				time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) //nolint:gosec // jitter to widen the race window, not a secret
				k.Metadata["n"] = strconv.Itoa(cnt + 1)
				k.SecretHash = bytes.Clone(hashes[i])
				k.UpdatedAt = at(time.Duration(sq) * time.Millisecond)
				return nil
			})
		})
	}
	close(start)
	wg.Wait()

	for i := range n {
		if errs[i] != nil {
			t.Errorf("UpdateKey #%d: %v", i, errs[i])
		}
		if calls[i] != 1 {
			t.Errorf("UpdateKey #%d called fn %d times, want 1", i, calls[i])
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	sort.Slice(steps, func(a, b int) bool { return steps[a].seq < steps[b].seq })
	prev := orig.SecretHash
	for j, st := range steps {
		if !bytes.Equal(st.saw, prev) || st.sawN != strconv.Itoa(j) {
			t.Fatalf("lost update: fn #%d (update %d) read hash %x and n=%s, want the previous write %x and n=%d",
				j+1, st.who, st.saw[:4], st.sawN, prev[:4], j)
		}
		prev = hashes[st.who]
	}
	last := steps[n-1].who

	final := mustGet(t, r, "key_1")
	if !bytes.Equal(final.SecretHash, hashes[last]) {
		t.Errorf("final hash %x, want %x written by the update whose fn ran last (#%d)", final.SecretHash[:4], hashes[last][:4], last)
	}
	if final.Metadata["n"] != strconv.Itoa(n) {
		t.Errorf("final counter = %s, want %d", final.Metadata["n"], n)
	}
	checkTime(t, "final UpdatedAt", final.UpdatedAt, at(n*time.Millisecond))

	// Each update returned what it wrote; the latest returned is what remains.
	latest := 0
	for i, k := range results {
		if !bytes.Equal(k.SecretHash, hashes[i]) {
			t.Errorf("UpdateKey #%d returned hash %x, want its own %x", i, k.SecretHash[:4], hashes[i][:4])
		}
		if k.UpdatedAt.After(results[latest].UpdatedAt) {
			latest = i
		}
	}
	if latest != last {
		t.Errorf("the latest returned update is #%d, but the stored one is #%d", latest, last)
	}
	checkResult(t, "stored row vs the latest UpdateKey result", final, results[latest])

	if _, err := r.KeyBySecretHash(ctx, hashes[last]); err != nil {
		t.Errorf("KeyBySecretHash(final): %v", err)
	}
	for _, st := range steps[:n-1] {
		if _, err := r.KeyBySecretHash(ctx, hashes[st.who]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("superseded hash of update #%d still found (err %v)", st.who, err)
		}
	}
}

func testInsertKeyConcurrentDistinctNames(t *testing.T, s store.Store) {
	const n = 50
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k := newKey(fmt.Sprintf("key_%02d", i), "acct_1", fmt.Sprintf("name %02d", i))
			k.Managed = true
			<-start
			errs[i] = store.InsertKey(ctx, r, k)
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("InsertKey #%d: %v", i, err)
		}
	}
	ks, err := r.ListManagedKeys(ctx, "acct_1")
	if err != nil || len(ks) != n {
		t.Fatalf("ListManagedKeys = %d keys, %v; want %d", len(ks), err, n)
	}
}

func testInsertKeyConcurrentSameName(t *testing.T, s store.Store) {
	const n = 50
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k := newKey(fmt.Sprintf("key_%02d", i), "acct_1", "the name")
			<-start
			errs[i] = store.InsertKey(ctx, r, k)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("InsertKey #%d and #%d both succeeded with one name", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrDuplicateName):
			t.Errorf("InsertKey #%d: err = %v, want %v", i, err, store.ErrDuplicateName)
		}
	}
	if winner < 0 {
		t.Fatal("no InsertKey succeeded")
	}
	for i := range n {
		_, err := r.GetKey(ctx, fmt.Sprintf("key_%02d", i))
		if i == winner && err != nil {
			t.Errorf("GetKey(winner): %v", err)
		}
		if i != winner && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetKey(loser #%d): err = %v, want ErrNotFound", i, err)
		}
	}
}

func checkUsage(t *testing.T, r store.Repository, id string, wantAt *time.Time, wantIP string) {
	t.Helper()
	k := mustGet(t, r, id)
	checkTimePtr(t, id+" LastUsedAt", k.LastUsedAt, wantAt)
	switch {
	case wantAt == nil && k.LastUsedIP != nil:
		t.Errorf("%s LastUsedIP = %q, want nil", id, *k.LastUsedIP)
	case wantAt != nil && k.LastUsedIP == nil:
		t.Errorf("%s LastUsedIP = nil, want %q", id, wantIP)
	case wantAt != nil && *k.LastUsedIP != wantIP:
		t.Errorf("%s LastUsedIP = %q, want %q", id, *k.LastUsedIP, wantIP)
	}
}

func testRecordUsageForwardOnly(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	k1, k2 := newKey("key_1", "acct_1", "one"), newKey("key_2", "acct_1", "two")
	mustInsert(t, r, k1)
	mustInsert(t, r, k2)
	record := func(batch ...store.Usage) {
		t.Helper()
		if err := r.RecordUsage(ctx, batch); err != nil {
			t.Fatalf("RecordUsage: %v", err)
		}
	}
	record() // empty batch
	record(nil...)
	checkUsage(t, r, "key_1", nil, "")

	record(store.Usage{KeyID: "key_1", At: at(10 * time.Second), IP: "192.0.2.10"})
	checkUsage(t, r, "key_1", ptr(at(10*time.Second)), "192.0.2.10")
	record(store.Usage{KeyID: "key_1", At: at(5 * time.Second), IP: "192.0.2.5"}) // older: ignored
	checkUsage(t, r, "key_1", ptr(at(10*time.Second)), "192.0.2.10")
	record(store.Usage{KeyID: "key_1", At: at(10 * time.Second), IP: "192.0.2.11"}) // same time: ignored
	checkUsage(t, r, "key_1", ptr(at(10*time.Second)), "192.0.2.10")

	// One batch, out of order, several keys, an unknown key (ignored).
	record(
		store.Usage{KeyID: "key_2", At: at(3 * time.Second), IP: "198.51.100.3"},
		store.Usage{KeyID: "key_1", At: at(30 * time.Second), IP: "192.0.2.30"},
		store.Usage{KeyID: "key_missing", At: at(time.Hour), IP: "203.0.113.1"},
		store.Usage{KeyID: "key_1", At: at(20 * time.Second), IP: "192.0.2.20"},
		store.Usage{KeyID: "key_2", At: at(7 * time.Second), IP: "2001:db8::7"},
		store.Usage{KeyID: "key_2", At: at(1 * time.Second), IP: "198.51.100.1"},
	)
	checkUsage(t, r, "key_1", ptr(at(30*time.Second)), "192.0.2.30")
	checkUsage(t, r, "key_2", ptr(at(7*time.Second)), "2001:db8::7")
	if _, err := r.GetKey(ctx, "key_missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("RecordUsage created a key (GetKey err = %v)", err)
	}
	// Equal times in one batch: the first wins, as applying the batch in
	// order would (a store may reorder a batch, not a key's own uses).
	record(
		store.Usage{KeyID: "key_1", At: at(40 * time.Second), IP: "192.0.2.41"},
		store.Usage{KeyID: "key_2", At: at(8 * time.Second), IP: "198.51.100.8"},
		store.Usage{KeyID: "key_1", At: at(40 * time.Second), IP: "192.0.2.42"},
		store.Usage{KeyID: "key_1", At: at(40 * time.Second), IP: "192.0.2.43"},
	)
	checkUsage(t, r, "key_1", ptr(at(40*time.Second)), "192.0.2.41")

	// A batch as auth.UsageTracker flushes it (one use a key, in id order,
	// which a store may write as it is): each key still only moves forward.
	record(
		store.Usage{KeyID: "key_1", At: at(35 * time.Second), IP: "192.0.2.35"}, // older: ignored
		store.Usage{KeyID: "key_2", At: at(9 * time.Second), IP: "198.51.100.9"},
		store.Usage{KeyID: "key_missing", At: at(time.Hour), IP: "203.0.113.1"},
	)
	checkUsage(t, r, "key_1", ptr(at(40*time.Second)), "192.0.2.41")
	checkUsage(t, r, "key_2", ptr(at(9*time.Second)), "198.51.100.9")

	// Usage touches only last_used_*; UpdateKey never writes them back.
	k := mustGet(t, r, "key_1")
	checkTime(t, "UpdatedAt after usage", k.UpdatedAt, k1.UpdatedAt)
	mustUpdate(t, r, "key_1", func(k *apikey.Key) {
		k.LastUsedAt, k.LastUsedIP = ptr(at(-time.Hour)), ptr("0.0.0.0")
		k.Name = "renamed"
	})
	checkUsage(t, r, "key_1", ptr(at(40*time.Second)), "192.0.2.41")

	// Deleted keys still record usage (the row is there), like any other.
	mustUpdate(t, r, "key_2", func(k *apikey.Key) { k.Deleted = true })
	record(store.Usage{KeyID: "key_2", At: at(time.Minute), IP: "198.51.100.60"})
	checkUsage(t, r, "key_2", ptr(at(time.Minute)), "198.51.100.60")
}

// testRecordUsageConcurrent flushes interleaved batches from many goroutines
// at once; each key must end at its latest use whatever the arrival order.
func testRecordUsageConcurrent(t *testing.T, s store.Store) {
	const (
		keys       = 4
		goroutines = 20
		perBatch   = 12
	)
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	ids := make([]string, keys+1)
	for i := range ids {
		ids[i] = fmt.Sprintf("key_%d", i)
		mustInsert(t, r, newKey(ids[i], "acct_1", ids[i]))
	}
	// Usages at distinct milliseconds, shuffled across goroutines; the last
	// key gets none.
	var all []store.Usage
	for i := range goroutines * perBatch {
		all = append(all, store.Usage{
			KeyID: ids[rand.IntN(keys)], //nolint:gosec // spreads usages across keys in the test, not a secret
			At:    at(time.Duration(i) * time.Millisecond),
			IP:    fmt.Sprintf("10.0.%d.%d", i/256, i%256),
		})
	}
	latest := map[string]store.Usage{}
	for _, u := range all {
		if u.At.After(latest[u.KeyID].At) {
			latest[u.KeyID] = u
		}
	}
	rand.Shuffle(len(all), func(i, j int) { all[i], all[j] = all[j], all[i] })

	errs := make([]error, goroutines)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for g := range goroutines {
		batch := all[g*perBatch : (g+1)*perBatch]
		wg.Go(func() {
			<-start
			// Half the goroutines flush in two parts to interleave further.
			if g%2 == 0 {
				errs[g] = r.RecordUsage(ctx, batch)
				return
			}
			if errs[g] = r.RecordUsage(ctx, batch[perBatch/2:]); errs[g] == nil {
				errs[g] = r.RecordUsage(ctx, batch[:perBatch/2])
			}
		})
	}
	close(start)
	wg.Wait()
	for g, err := range errs {
		if err != nil {
			t.Errorf("RecordUsage goroutine %d: %v", g, err)
		}
	}
	for _, id := range ids[:keys] {
		if u, ok := latest[id]; ok {
			checkUsage(t, r, id, &u.At, u.IP)
		}
	}
	checkUsage(t, r, ids[keys], nil, "")
}

func testModesIsolated(t *testing.T, s store.Store) {
	ctx := t.Context()
	live, sandbox := s.Repo(apikey.Live), s.Repo(apikey.Sandbox)
	mustAccount(t, live, "acct_1")
	if ok, err := sandbox.AccountExists(ctx, "acct_1"); err != nil || ok {
		t.Errorf("sandbox AccountExists(live account) = %v, %v; want false", ok, err)
	}
	k := newKey("key_1", "acct_1", "same name")
	k.Managed = true
	mustInsert(t, live, k)

	_, err := sandbox.GetKey(ctx, "key_1")
	wantErr(t, "sandbox GetKey(live key)", err, store.ErrNotFound)
	_, err = sandbox.KeyBySecretHash(ctx, k.SecretHash)
	wantErr(t, "sandbox KeyBySecretHash(live key)", err, store.ErrNotFound)
	_, err = store.UpdateKey(ctx, sandbox, "key_1", func(*apikey.Key) error { return nil })
	wantErr(t, "sandbox UpdateKey(live key)", err, store.ErrNotFound)
	if ks, err := sandbox.ListManagedKeys(ctx, "acct_1"); err != nil || len(ks) != 0 {
		t.Errorf("sandbox ListManagedKeys = %d keys, %v; want none", len(ks), err)
	}
	if err := store.InsertKey(ctx, sandbox, clone(k)); err == nil {
		t.Error("sandbox InsertKey for an account that exists only in live succeeded")
	}

	// Same account id, key id, name and hash in the sandbox: no conflict.
	if err := store.CreateAccount(ctx, sandbox, "acct_1", at(0)); err != nil {
		t.Fatalf("sandbox CreateAccount(live account id): %v", err)
	}
	sk := clone(k)
	sk.Metadata = map[string]string{"mode": "sandbox"}
	mustInsert(t, sandbox, sk)
	checkKey(t, "live key after sandbox insert", mustGet(t, live, "key_1"), k)
	got, err := sandbox.KeyBySecretHash(ctx, k.SecretHash)
	if err != nil {
		t.Fatalf("sandbox KeyBySecretHash: %v", err)
	}
	checkKey(t, "sandbox key", got, sk)

	// Writes to one mode leave the other alone.
	mustUpdate(t, sandbox, "key_1", func(k *apikey.Key) { k.Name, k.Deleted = "sandbox name", true })
	if err := sandbox.RecordUsage(ctx, []store.Usage{{KeyID: "key_1", At: at(time.Hour), IP: "192.0.2.1"}}); err != nil {
		t.Fatalf("sandbox RecordUsage: %v", err)
	}
	checkKey(t, "live key after sandbox writes", mustGet(t, live, "key_1"), k)
	if ks, err := live.ListManagedKeys(ctx, "acct_1"); err != nil || len(ks) != 1 {
		t.Errorf("live ListManagedKeys = %d keys, %v; want 1", len(ks), err)
	}
	mustAccount(t, live, "acct_2")
	if ok, _ := sandbox.AccountExists(ctx, "acct_2"); ok {
		t.Error("live CreateAccount is visible in the sandbox")
	}
	mustUpdate(t, live, "key_1", func(k *apikey.Key) { k.Status = apikey.StatusInactive })
	if got := mustGet(t, sandbox, "key_1"); got.Status != apikey.StatusActive || got.Name != "sandbox name" {
		t.Errorf("sandbox key after live update: status %s name %q", got.Status, got.Name)
	}
}

// testPreviousSecret covers rotation with a grace period: UpdateKey keeps the
// replaced hash, KeyBySecretHash finds the key by either hash (the current
// one first), and clearing the previous hash stops the old secret.
// testLookupCurrentSecretWins: a hash that is one key's current secret and
// another's previous one (nothing in the schema forbids it, though fresh
// random secrets never meet) finds the key whose current secret it is,
// whichever of the two was inserted or rotated first; a hash that is only a
// previous secret finds that key.
func testLookupCurrentSecretWins(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	grace := ptr(at(time.Hour))
	for i, prevFirst := range []bool{true, false} {
		shared, onlyPrev := newHash(), newHash()
		cur := newKey(fmt.Sprintf("key_c%d", i), "acct_1", fmt.Sprintf("current %d", i))
		cur.SecretHash = shared
		prev := newKey(fmt.Sprintf("key_p%d", i), "acct_1", fmt.Sprintf("previous %d", i))
		rotate := func() {
			mustUpdate(t, r, prev.ID, func(k *apikey.Key) { k.PrevSecretHash, k.PrevSecretExpiresAt = shared, grace })
		}
		if prevFirst {
			mustInsert(t, r, prev)
			rotate()
			mustInsert(t, r, cur)
		} else {
			mustInsert(t, r, cur)
			mustInsert(t, r, prev)
			rotate()
		}
		k, err := r.KeyBySecretHash(ctx, shared)
		if err != nil || k.ID != cur.ID {
			t.Fatalf("prevFirst=%v: KeyBySecretHash(shared) = %v, %v; want %s, whose current secret it is", prevFirst, k, err, cur.ID)
		}
		mustUpdate(t, r, prev.ID, func(k *apikey.Key) { k.PrevSecretHash = onlyPrev })
		if k, err := r.KeyBySecretHash(ctx, onlyPrev); err != nil || k.ID != prev.ID {
			t.Fatalf("prevFirst=%v: KeyBySecretHash(a previous secret only) = %v, %v; want %s", prevFirst, k, err, prev.ID)
		}
	}
}

func testPreviousSecret(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	a, b := newKey("key_a", "acct_1", "a"), newKey("key_b", "acct_1", "b")
	mustInsert(t, r, a)
	mustInsert(t, r, b)
	checkKey(t, "new key", mustGet(t, r, "key_a"), a) // no previous secret

	// Keys without a previous secret do not collide, whether it is nil or empty.
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.PrevSecretHash = []byte{} })
	mustUpdate(t, r, "key_b", func(k *apikey.Key) { k.PrevSecretHash = []byte{} })
	checkKey(t, "empty previous hash", mustGet(t, r, "key_b"), b)

	old, cur := a.SecretHash, newHash()
	want := clone(a)
	want.SecretHash, want.PrevSecretHash, want.PrevSecretExpiresAt = cur, old, ptr(at(24*time.Hour))
	want.UpdatedAt = at(time.Hour)
	got := mustUpdate(t, r, "key_a", func(k *apikey.Key) {
		k.PrevSecretHash, k.SecretHash = k.SecretHash, bytes.Clone(cur)
		k.PrevSecretExpiresAt, k.UpdatedAt = want.PrevSecretExpiresAt, want.UpdatedAt
	})
	checkResult(t, "rotate result", got, want)
	checkKey(t, "GetKey after rotate", mustGet(t, r, "key_a"), want)
	for _, h := range [][]byte{cur, old} {
		k, err := r.KeyBySecretHash(ctx, h)
		if err != nil {
			t.Fatalf("KeyBySecretHash(%x): %v", h[:4], err)
		}
		checkKey(t, "KeyBySecretHash after rotate", k, want)
	}

	// Another key cannot take a previous hash in use, nor keep it as its own previous.
	_, err := store.UpdateKey(ctx, r, "key_b", func(k *apikey.Key) error { k.PrevSecretHash = bytes.Clone(old); return nil })
	wantErr(t, "second key with the same previous hash", err, store.ErrDuplicateKeyID)
	checkKey(t, "key_b after rejected update", mustGet(t, r, "key_b"), b)

	// Rotating again replaces the previous secret; the first one stops working.
	newer := newHash()
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.PrevSecretHash, k.SecretHash = k.SecretHash, bytes.Clone(newer) })
	if _, err := r.KeyBySecretHash(ctx, old); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyBySecretHash(twice-replaced hash): err = %v, want ErrNotFound", err)
	}
	if k, err := r.KeyBySecretHash(ctx, cur); err != nil || !bytes.Equal(k.SecretHash, newer) {
		t.Errorf("KeyBySecretHash(previous hash) = %v, %v; want key_a with the newer hash", k, err)
	}

	// Ending the grace period clears it.
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.PrevSecretHash, k.PrevSecretExpiresAt = nil, nil })
	k := mustGet(t, r, "key_a")
	if len(k.PrevSecretHash) != 0 || k.PrevSecretExpiresAt != nil {
		t.Errorf("after clearing: PrevSecretHash %x, PrevSecretExpiresAt %v; want none", k.PrevSecretHash, k.PrevSecretExpiresAt)
	}
	if _, err := r.KeyBySecretHash(ctx, cur); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("KeyBySecretHash(cleared previous hash): err = %v, want ErrNotFound", err)
	}

	// The previous hash lives in its mode only.
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.PrevSecretHash = bytes.Clone(old) })
	if _, err := s.Repo(apikey.Sandbox).KeyBySecretHash(ctx, old); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("sandbox KeyBySecretHash(live previous hash): err = %v, want ErrNotFound", err)
	}
}

// testKeyCapReached: keys that are neither deleted nor expired count toward
// the cap, other accounts' keys do not; the counter of keys not deleted
// answers below the cap and the exact count at it (limit 5 below: five keys
// not deleted, one of them expired). The counter follows inserts, deletions
// (and their undoing by hand) and removed accounts.
func testKeyCapReached(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_count")
	mustAccount(t, r, "acct_other")
	for i, edit := range []func(*apikey.Key){
		nil, nil, nil, // three active
		func(k *apikey.Key) { k.Deleted = true },
		func(k *apikey.Key) { e := at(time.Hour); k.ExpiresAt = &e },     // expired at "now" below
		func(k *apikey.Key) { e := at(3 * time.Hour); k.ExpiresAt = &e }, // still active
	} {
		k := newKey(fmt.Sprintf("key_count%d", i), "acct_count", fmt.Sprintf("count %d", i))
		if edit != nil {
			edit(k)
		}
		mustInsert(t, r, k)
	}
	mustInsert(t, r, newKey("key_countother", "acct_other", "other"))
	reached := func(account string, limit int) bool {
		t.Helper()
		var got bool
		err := r.InTx(ctx, func(tx store.Tx) error {
			var err error
			got, err = tx.KeyCapReached(ctx, account, at(2*time.Hour), limit)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	// counted checks the counter against the keys, and returns it.
	counted := func(account string) int64 {
		t.Helper()
		n := mustQueryInt(t, s, apikey.Live, `SELECT live_keys FROM accounts WHERE id = ?`, account)
		if want := mustQueryInt(t, s, apikey.Live, `SELECT count(*) FROM api_keys WHERE account_id = ? AND deleted = ?`, account, false); n != want {
			t.Errorf("%s: live_keys = %d, want %d (its keys not deleted)", account, n, want)
		}
		return n
	}
	if n := counted("acct_count"); n != 5 {
		t.Errorf("live_keys = %d, want 5", n)
	}
	for _, tc := range []struct {
		limit int
		want  bool
	}{{2, true}, {4, true}, {5, false}, {6, false}, {100, false}} {
		if got := reached("acct_count", tc.limit); got != tc.want {
			t.Errorf("KeyCapReached(limit %d) = %v, want %v (4 active keys, 5 not deleted)", tc.limit, got, tc.want)
		}
	}
	if !reached("acct_other", 1) || reached("acct_other", 2) {
		t.Error("acct_other (one key): KeyCapReached wrong at limits 1 and 2")
	}
	err := r.InTx(ctx, func(tx store.Tx) error {
		_, err := tx.KeyCapReached(ctx, "acct_none", at(0), 1)
		return err
	})
	if !errors.Is(err, store.ErrNoAccount) {
		t.Errorf("KeyCapReached(no such account): %v, want ErrNoAccount", err)
	}

	mustUpdate(t, r, "key_count0", func(k *apikey.Key) { k.Deleted = true })
	mustUpdate(t, r, "key_count1", func(k *apikey.Key) { k.Name = "renamed" }) // not a deletion
	if n := counted("acct_count"); n != 4 {
		t.Errorf("after a deletion: live_keys = %d, want 4", n)
	}
	if reached("acct_count", 4) {
		t.Error("after a deletion: KeyCapReached(4) = true, want false (3 active)")
	}
	mustExec(t, s, apikey.Live, 1, `UPDATE api_keys SET deleted = ? WHERE id = ?`, false, "key_count3")
	if n := counted("acct_count"); n != 5 {
		t.Errorf("after undeleting by hand: live_keys = %d, want 5", n)
	}
	if err := r.InTx(ctx, func(tx store.Tx) error { return tx.DeleteAccount(ctx, "acct_other") }); err != nil {
		t.Fatal(err)
	}
	counted("acct_count")

	// Inside one unit, after LockAccount (whose read may answer below the
	// cap): keys inserted after it count. 5 not deleted, 4 active; two more
	// make 7 and 6, so the cap of 6 is reached.
	now := at(2 * time.Hour)
	err = r.InTx(ctx, func(tx store.Tx) error {
		if err := tx.LockAccount(ctx, "acct_count"); err != nil {
			return err
		}
		if got, err := tx.KeyCapReached(ctx, "acct_count", now, 6); err != nil || got {
			t.Errorf("after LockAccount: KeyCapReached(6) = %v, %v; want false (4 active)", got, err)
		}
		for i := 6; i < 8; i++ {
			if err := tx.InsertKey(ctx, newKey(fmt.Sprintf("key_count%d", i), "acct_count", fmt.Sprintf("count %d", i))); err != nil {
				return err
			}
		}
		if got, err := tx.KeyCapReached(ctx, "acct_count", now, 6); err != nil || !got {
			t.Errorf("after two inserts in the unit: KeyCapReached(6) = %v, %v; want true (6 active)", got, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := counted("acct_count"); n != 7 {
		t.Errorf("live_keys = %d, want 7", n)
	}
}

// testAllowedNetworks: a key's networks (migration 00012) come back as
// written, IPv4 and IPv6, by id, by hash and under lock; replaced and
// cleared (any address) by UpdateKey.
func testAllowedNetworks(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Sandbox)
	mustAccount(t, r, "acct_1")
	nets := func(in ...string) []netip.Prefix {
		ps, err := apikey.ParseNetworks(in)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	k := newKey("key_1", "acct_1", "restricted")
	k.AllowedNetworks = nets("10.0.0.0/8", "2001:db8::/32", "203.0.113.7")
	mustInsert(t, r, k)
	want := clone(k)
	checkKey(t, "GetKey", mustGet(t, r, "key_1"), want)
	byHash, err := r.KeyBySecretHash(ctx, k.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, "KeyBySecretHash", byHash, want)
	if got := apikey.NetworkStrings(byHash.AllowedNetworks); !reflect.DeepEqual(got, []string{"10.0.0.0/8", "203.0.113.7/32", "2001:db8::/32"}) {
		t.Fatalf("networks %v", got)
	}
	want.AllowedNetworks = nets("192.0.2.0/24")
	checkResult(t, "UpdateKey", mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.AllowedNetworks = want.AllowedNetworks }), want)
	checkKey(t, "GetKey after update", mustGet(t, r, "key_1"), want)
	want.AllowedNetworks = nil
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.AllowedNetworks = nil })
	checkKey(t, "GetKey after clearing", mustGet(t, r, "key_1"), want)
}

// testRateLimit: a key's own rate limit (migration 00013) comes back as
// written, by id and by hash; replaced by UpdateKey.
func testRateLimit(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	k := newKey("key_1", "acct_1", "limited")
	k.RateLimit = &apikey.RateLimit{Limit: 100, Window: time.Minute}
	mustInsert(t, r, k)
	want := clone(k)
	checkKey(t, "GetKey", mustGet(t, r, "key_1"), want)
	byHash, err := r.KeyBySecretHash(ctx, k.SecretHash)
	if err != nil {
		t.Fatal(err)
	}
	checkKey(t, "KeyBySecretHash", byHash, want)
	want.RateLimit = &apikey.RateLimit{Limit: 1_000_000, Window: 24 * time.Hour}
	mustUpdate(t, r, "key_1", func(k *apikey.Key) { k.RateLimit = want.RateLimit })
	checkKey(t, "GetKey after update", mustGet(t, r, "key_1"), want)
	plain := newKey("key_2", "acct_1", "plain")
	mustInsert(t, r, plain)
	if got := mustGet(t, r, "key_2"); got.RateLimit != nil {
		t.Fatalf("a key without a limit reads back %+v", got.RateLimit)
	}
}
