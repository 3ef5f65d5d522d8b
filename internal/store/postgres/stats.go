package postgres

// System names the database system for traces and metrics.
func (s *Store) System() string { return "postgresql" }
