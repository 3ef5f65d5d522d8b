package store

import (
	"errors"
	"fmt"
)

// The failures of the store itself, as opposed to a bug or a refusal. Each
// store recognises its driver's errors and wraps them with these (errors.Is
// finds both the sentinel and the driver's error); the server turns
// ErrUnavailable into 503 (50300) with Retry-After, and ErrOutcomeUnknown
// into details.outcome "unknown". Nothing else needs to know a driver.
var (
	// ErrUnavailable: the store cannot serve now but may shortly: it is
	// unreachable (connection refused or reset, shutting down), slower than
	// the store timeout, or out of space. The same call may succeed later.
	ErrUnavailable = errors.New("store: unavailable")
	// ErrOutcomeUnknown: a unit of work failed while it was committing (the
	// connection died during COMMIT, or the commit outlived its deadline), so
	// its changes may or may not be stored.
	ErrOutcomeUnknown = errors.New("store: the commit's outcome is unknown")
)

// Unavailable marks err as ErrUnavailable (nil stays nil; marking twice is
// marking once).
func Unavailable(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// OutcomeUnknown marks err as ErrOutcomeUnknown.
func OutcomeUnknown(err error) error {
	if err == nil || errors.Is(err, ErrOutcomeUnknown) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
}
