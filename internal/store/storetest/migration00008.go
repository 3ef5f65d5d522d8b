package storetest

// Pre00008Keys are the keys a migration test seeds at version 7 on
// SeedAccount, by id, true for a deleted one: 00008's backfill must count the
// two not deleted (and an account without keys holds 0: EmptyAccount).
var Pre00008Keys = map[string]bool{"key_live_1": false, "key_live_2": false, "key_gone": true}

// EmptyAccount is an account without keys in the 00008 migration tests.
const EmptyAccount = "acct_empty"

// LiveKeys00008 is what 00008 backfills for SeedAccount.
const LiveKeys00008 = 2
