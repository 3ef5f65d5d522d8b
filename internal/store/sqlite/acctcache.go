package sqlite

import (
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// The writer's account cache: LockAccount's row (the audit chain's head and
// the count of keys not deleted) as the writer's transaction has it, so that
// each create on an account does not read back what the previous one wrote.
//
// Unlike keys (keycache.go), an account under load is written by every unit
// (its head moves with each event), so the cache follows the transaction:
// a unit records what it did to each account (acctOps) and the writer
// applies that only when the unit's savepoint is released; a unit rolled
// back to its savepoint leaves the cache as the database is again, as it was
// before the unit. A batch that does not commit empties the cache, and so
// does a commit by another connection (PRAGMA data_version, keycache.go).
//
// A unit knows an account's row exactly only while it tracks it as its head
// (headAccount): its own appends move the head, and an insert of a live key
// adds one to the count, as the trigger api_keys_live_insert does. Anything
// else that changes an account row (CreateAccount, DeleteAccount, a key
// written in another account) drops it from the cache instead. An update of
// a key the unit read (regenerate, delete) moves the count as the trigger
// api_keys_live_update does when it deletes or undeletes the key: the unit
// knows the row's account (which no statement changes) and deleted flag;
// an update of a key it did not read may change any account's count, and
// empties the cache at the unit's end.

// acctState is an account row as LockAccount reads it.
type acctState struct {
	head auditHead
	live int64
}

// acctOp is what a unit does to the cache of account id at its end: keep
// st, or drop the account.
type acctOp struct {
	id   string
	st   acctState
	drop bool
}

// acctCacheSize bounds the cache; past it, it starts over.
const acctCacheSize = 1024

// touch: the unit changed account id's row in a way it does not track.
func (t *tx) touch(id string) {
	t.acctOps = append(t.acctOps, acctOp{id: id, drop: true})
}

// touched reports whether the unit changed account id's row apart from its
// head: the cache has it as it was before the unit.
func (t *tx) touched(id string) bool {
	if t.touchedAll {
		return true
	}
	for _, op := range t.acctOps {
		if op.id == id {
			return true
		}
	}
	return false
}

// leaveHead records the head account's row as the unit leaves it (to lock
// another account, or at its end).
func (t *tx) leaveHead() {
	if t.headAccount == "" {
		return
	}
	if t.liveKnown {
		t.acctOps = append(t.acctOps, acctOp{id: t.headAccount, st: acctState{head: t.head, live: t.liveKeys}})
	} else {
		t.touch(t.headAccount)
	}
	t.headAccount = ""
}

// cachedAccount returns account id's row from the cache, if the unit may
// use it.
func (t *tx) cachedAccount(id string) (acctState, bool) {
	if t.touched(id) {
		return acctState{}, false
	}
	st, ok := t.w.keys.accts[id]
	return st, ok
}

// applyAccts is the end of a unit whose savepoint was released.
func (t *tx) applyAccts() {
	t.leaveHead()
	c := &t.w.keys
	if t.touchedAll {
		clear(c.accts)
		return
	}
	for _, op := range t.acctOps {
		if op.drop {
			delete(c.accts, op.id)
			continue
		}
		if _, ok := c.accts[op.id]; !ok && len(c.accts) >= acctCacheSize {
			clear(c.accts)
		}
		c.accts[op.id] = op.st
	}
}

// keyRow is what the trigger api_keys_live_update reads of a key's row.
type keyRow struct {
	id, account string
	deleted     bool
}

// keyRead records key id's row as the unit read or wrote it.
func (t *tx) keyRead(id, account string, deleted bool) {
	// A map, not a slice: a unit may write many keys (a bulk load in one
	// unit), and a scan per key made that quadratic.
	if t.keysRead == nil {
		t.keysRead = map[string]keyRow{}
	}
	t.keysRead[id] = keyRow{id, account, deleted}
}

// keyUpdated follows UpdateKey(k), which returned err, in the account cache.
func (t *tx) keyUpdated(k *apikey.Key, err error) {
	row, ok := t.keysRead[k.ID]
	if !ok || row.account != k.AccountID {
		// The trigger counts the key out of, or into, the account its row
		// has, which the unit does not know.
		t.liveKnown = false
		t.touchedAll = true
		return
	}
	switch {
	case err != nil: // nothing changed, as a rule: not worth relying on
		if row.account == t.headAccount {
			t.liveKnown = false
		} else {
			t.touch(row.account)
		}
		delete(t.keysRead, k.ID)
		return
	case row.deleted == k.Deleted:
	case row.account != t.headAccount:
		t.touch(row.account)
	case k.Deleted:
		t.liveKeys--
	default:
		t.liveKeys++
	}
	row.deleted = k.Deleted
	t.keysRead[k.ID] = row
}
