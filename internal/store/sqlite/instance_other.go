//go:build !unix

package sqlite

// holdInstance without flock: the instance has an id but no lock file, and
// no instance is ever known to be gone (claims die with their leases).
func holdInstance(string) (*instance, error) {
	return &instance{id: newInstanceID(), release: func() error { return nil }}, nil
}

func lockGone(string) (bool, error) { return false, nil }
