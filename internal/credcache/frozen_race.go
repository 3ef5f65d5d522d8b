//go:build race

package credcache

// checkFrozen: under the race detector (go test -race, make test-race) the
// cache keeps a deep copy of every entry and checks at each hit and each
// removal that no reader changed the snapshot it shares (Get).
var checkFrozen = true
