package sqlite

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
// written in another account, an update that may delete or undelete a key:
// the trigger api_keys_live_update) drops it from the cache instead.

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
