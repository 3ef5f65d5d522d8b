package sqlite

// ByHashSQL is the query KeyBySecretHash runs, for the lookup benchmark's
// EXPLAIN QUERY PLAN.
const ByHashSQL = byHashSQL
