package sqlite

import (
	"context"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// ByHashSQL are the queries KeyBySecretHash runs (the pool's, the fast reader's), for the lookup
// benchmark's EXPLAIN QUERY PLAN.
var ByHashSQL = []string{byHashSQL, byHashJoinedSQL}

// ReaderMmapSize is PRAGMA mmap_size on one of mode's readers: what SQLite
// maps of the file there (0: it reads through pread).
func ReaderMmapSize(s *Store, m apikey.Mode) (n int64, err error) {
	err = s.repos[m].rdb.QueryRowContext(context.Background(), `PRAGMA mmap_size`).Scan(&n)
	return n, err
}

// ReaderMmapBytes is what the readers ask to map.
const ReaderMmapBytes = readerMmapBytes

// LookupRows counts the rows KeyBySecretHash's statement returns for hash.
func LookupRows(s *Store, m apikey.Mode, hash []byte) (n int, err error) {
	rows, err := s.repos[m].rdb.QueryContext(context.Background(), byHashSQL, hash)
	if err != nil {
		return 0, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		n++
	}
	return n, rows.Err()
}
