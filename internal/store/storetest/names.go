package storetest

import (
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/namekey"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Confusables are names people cannot tell from ConfusedName (issue 17):
// a Cyrillic е, two spaces, a trailing combining mark (NFD; CleanName's NFC
// makes it "ý"), the precomposed "ý".
var Confusables = []string{"Managed s\u0435cret key", "Managed  secret key", "Managed secret key\u0301", "Managed secret ke\u00fd"}

// ConfusedName is the name the Confusables look like.
const ConfusedName = "Managed secret key"

// testNameKeys: names are unique among live keys by their name key, on
// insert and rename, and a deleted or expired key frees every name with its
// key.
func testNameKeys(t *testing.T, s store.Store) {
	ctx := t.Context()
	r := s.Repo(apikey.Live)
	mustAccount(t, r, "acct_1")
	mustAccount(t, r, "acct_2")
	a := newKey("key_a", "acct_1", ConfusedName)
	mustInsert(t, r, a)
	if got, want := mustGet(t, r, "key_a").NameKey, namekey.Key(ConfusedName); got != want {
		t.Errorf("NameKey read back = %q, want %q", got, want)
	}
	for i, name := range Confusables {
		wantErr(t, "insert "+name, store.InsertKey(ctx, r, newKey("key_c"+string(rune('0'+i)), "acct_1", name)), store.ErrDuplicateName)
	}
	mustInsert(t, r, newKey("key_o", "acct_2", Confusables[0])) // other account: fine
	other := newKey("key_b", "acct_1", "Other key")
	mustInsert(t, r, other)
	for _, name := range Confusables {
		_, err := store.UpdateKey(ctx, r, "key_b", func(k *apikey.Key) error { k.Name = name; return nil })
		wantErr(t, "rename onto "+name, err, store.ErrDuplicateName)
	}
	// A rename within its own key ("a  b" for "a b") is no conflict.
	if k := mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.Name = Confusables[1] }); k.NameKey != namekey.Key(ConfusedName) {
		t.Errorf("renamed key_a: NameKey = %q, want %q", k.NameKey, namekey.Key(ConfusedName))
	}
	if got := mustGet(t, r, "key_a").Name; got != Confusables[1] {
		t.Errorf("renamed key_a: Name = %q, want it as written, %q", got, Confusables[1])
	}

	// Deleted: every name with its key is free.
	mustUpdate(t, r, "key_a", func(k *apikey.Key) { k.Deleted = true })
	mustInsert(t, r, newKey("key_d", "acct_1", Confusables[0]))
	wantErr(t, "insert beside key_d", store.InsertKey(ctx, r, newKey("key_e", "acct_1", ConfusedName)), store.ErrDuplicateName)

	// Expired: ReleaseExpiredName by a confusable name frees it.
	mustUpdate(t, r, "key_d", func(k *apikey.Key) { k.ExpiresAt = ptr(at(1)) })
	err := r.InTx(ctx, func(tx store.Tx) error {
		if err := tx.ReleaseExpiredName(ctx, "acct_1", Confusables[2], at(2)); err != nil {
			return err
		}
		return tx.InsertKey(ctx, newKey("key_f", "acct_1", ConfusedName))
	})
	if err != nil {
		t.Errorf("release an expired confusable and insert: %v", err)
	}
}
