//go:build !race

package credcache

// checkFrozen is off outside race builds: the check costs a deep copy per
// entry and a deep comparison per hit (frozen_race.go).
var checkFrozen = false
