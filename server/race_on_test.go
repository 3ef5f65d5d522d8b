//go:build race

package server_test

// raceEnabled: this test binary runs under the race detector (go test
// -race), so the server binary the tests build and run is built with -race
// too, and a data race in the real process fails the test that ran it.
const raceEnabled = true
