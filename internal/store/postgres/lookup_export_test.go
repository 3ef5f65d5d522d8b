package postgres

// KeyBySecretHashSQL is the query KeyBySecretHash sends, for the lookup
// benchmark's EXPLAIN.
func KeyBySecretHashSQL(r *Repo) string { return r.q.keyBySecretHash }
