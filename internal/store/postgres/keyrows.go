package postgres

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/keymaps"
)

// GetKey and ListKeys read keys from the rows' raw values (scanRawKeys):
// pgx's Scan decodes and allocates each of a key's 30 columns on its own
// (~40 allocations a key), while here a page's texts are gathered in one
// buffer that becomes one string, and its hashes in another, which the
// keys' strings and hashes are cut from. Columns that do not come as
// rawKeyColumns expects (the simple protocol sends every column as text)
// or a value it does not read (a NULL where none may be, an infinite
// time) leave it to scanKey, so the result is always scanKey's.

// The columns of keyColumns, by position.
const (
	kID = iota
	kAccountID
	kName
	kType
	kSecretHash
	kPermissions
	kMetadata
	kStatus
	kManaged
	kDeleted
	kLastUsedAt
	kLastUsedIP
	kExpiresAt
	kCreatedAt
	kUpdatedAt
	kCreatedByKind
	kCreatedByID
	kCreatedByRequest
	kKeyHint
	kNameKey
	kAllowedNetworks
	kRateLimit
	kRateWindow
	kCreditsRemaining
	kCreditsRefillAmount
	kCreditsRefillInterval
	kCreditsRefillDay
	kCreditsRefilledAt
	kPrevSecretHash
	kPrevSecretExpiresAt
	keyFields
)

// keyColumnTypes are the columns' types as the schema has them.
var keyColumnTypes = [keyFields]uint32{
	kID: pgtype.TextOID, kAccountID: pgtype.TextOID, kName: pgtype.TextOID, kType: pgtype.TextOID,
	kSecretHash: pgtype.ByteaOID, kPermissions: pgtype.JSONBOID, kMetadata: pgtype.JSONBOID, kStatus: pgtype.TextOID,
	kManaged: pgtype.BoolOID, kDeleted: pgtype.BoolOID, kLastUsedAt: pgtype.TimestamptzOID, kLastUsedIP: pgtype.TextOID,
	kExpiresAt: pgtype.TimestamptzOID, kCreatedAt: pgtype.TimestamptzOID, kUpdatedAt: pgtype.TimestamptzOID,
	kCreatedByKind: pgtype.TextOID, kCreatedByID: pgtype.TextOID, kCreatedByRequest: pgtype.TextOID,
	kKeyHint: pgtype.TextOID, kNameKey: pgtype.TextOID, kAllowedNetworks: pgtype.TextOID,
	kRateLimit: pgtype.Int4OID, kRateWindow: pgtype.Int4OID, kCreditsRemaining: pgtype.Int8OID,
	kCreditsRefillAmount: pgtype.Int8OID, kCreditsRefillInterval: pgtype.TextOID, kCreditsRefillDay: pgtype.Int4OID,
	kCreditsRefilledAt: pgtype.Int8OID, kPrevSecretHash: pgtype.ByteaOID, kPrevSecretExpiresAt: pgtype.TimestamptzOID,
}

// rawKeyColumns reports whether the columns come as scanRawKeys reads them:
// keyColumnTypes, texts in either format (the text's bytes), jsonb in either
// (binary: a version byte 1, then the text), everything else in binary.
func rawKeyColumns(fds []pgconn.FieldDescription) bool {
	if len(fds) != keyFields {
		return false
	}
	for i, fd := range fds {
		if fd.DataTypeOID != keyColumnTypes[i] {
			return false
		}
		switch fd.DataTypeOID {
		case pgtype.TextOID, pgtype.JSONBOID:
		default:
			if fd.Format != pgx.BinaryFormatCode {
				return false
			}
		}
	}
	return true
}

// rawKey is a key's values as scanRawKeys gathers them: where its texts
// end in the page's text buffer (and its hashes in the hash buffer), and
// its numbers; null marks the NULLs.
type rawKey struct {
	ends [keyFields]int
	nums [keyFields]int64
	null [keyFields]bool
}

// rawKeyPage is scanRawKeys' buffers, reused from page to page.
type rawKeyPage struct {
	text []byte
	keys []rawKey
}

var rawKeyPages = sync.Pool{New: func() any { return &rawKeyPage{text: make([]byte, 0, 16<<10)} }}

// scanRawKeys reads the keys of rows (keyColumns, rawKeyColumns) and closes
// it. false (and no error) when a value is one it does not read: the keys
// are to be read again by Scan.
func scanRawKeys(rows pgx.Rows, size int) ([]*apikey.Key, bool, error) {
	defer rows.Close()
	fds := rows.FieldDescriptions()
	sp := rawKeyPages.Get().(*rawKeyPage) //nolint:forcetypeassert // the pool holds only these
	defer func() {
		if cap(sp.text) <= 1<<20 { // a larger page's buffer is let go
			rawKeyPages.Put(sp)
		}
	}()
	text, read := sp.text[:0], sp.keys[:0]
	defer func() { sp.text, sp.keys = text, read }()
	hashes := make([]byte, 0, 32*size) // the keys keep it: not pooled; never nil, as an empty bytea is not
	for rows.Next() {
		vals := rows.RawValues()
		if len(vals) != keyFields {
			return nil, false, nil
		}
		read = append(read, rawKey{})
		rk := &read[len(read)-1]
		for i, v := range vals {
			if v == nil {
				switch i {
				case kLastUsedAt, kLastUsedIP, kExpiresAt, kKeyHint, kNameKey, kCreditsRemaining, kPrevSecretHash, kPrevSecretExpiresAt:
					rk.null[i] = true
				default:
					return nil, false, nil // Scan decides
				}
			} else {
				switch keyColumnTypes[i] {
				case pgtype.TextOID:
					text = append(text, v...)
				case pgtype.JSONBOID:
					if fds[i].Format == pgx.BinaryFormatCode {
						if len(v) == 0 || v[0] != 1 {
							return nil, false, nil
						}
						v = v[1:]
					}
					text = append(text, v...)
				case pgtype.ByteaOID:
					hashes = append(hashes, v...)
				case pgtype.BoolOID:
					if len(v) != 1 {
						return nil, false, nil
					}
					rk.nums[i] = int64(v[0])
				case pgtype.Int4OID:
					if len(v) != 4 {
						return nil, false, nil
					}
					rk.nums[i] = int64(int32(binary.BigEndian.Uint32(v))) //nolint:gosec // two's complement, as PostgreSQL sends it
				case pgtype.Int8OID, pgtype.TimestamptzOID:
					if len(v) != 8 {
						return nil, false, nil
					}
					n := int64(binary.BigEndian.Uint64(v)) //nolint:gosec // two's complement, as PostgreSQL sends it
					if keyColumnTypes[i] == pgtype.TimestamptzOID && (n == math.MaxInt64 || n == math.MinInt64) {
						return nil, false, nil // infinity: Scan decides
					}
					rk.nums[i] = n
				}
			}
			switch keyColumnTypes[i] {
			case pgtype.ByteaOID:
				rk.ends[i] = len(hashes)
			default:
				rk.ends[i] = len(text)
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	all := string(text)
	out := make([]*apikey.Key, 0, max(size, len(read)))
	keys := make([]apikey.Key, len(read))
	var ptrs pagePtrs
	start, hstart := 0, 0
	for j := range read {
		rk := &read[j]
		var f [keyFields]string
		var h [keyFields][]byte
		for i, end := range rk.ends {
			if keyColumnTypes[i] == pgtype.ByteaOID {
				if !rk.null[i] {
					h[i] = hashes[hstart:end:end]
				}
				hstart = end
				continue
			}
			f[i] = all[start:end]
			start = end
		}
		k := &keys[j]
		if err := rawKey2Key(k, rk, &f, &h, &ptrs); err != nil {
			return nil, true, err
		}
		out = append(out, k)
	}
	return out, true, nil
}

// pagePtrs holds the values a page's keys point to (a last-used IP, the
// times that may be NULL, credits remaining) in arrays of the page, so
// that they are not an allocation each, nor is the row's array of texts
// (30 strings, which pointing into it moved to the heap for every row).
// Each value is taken capped at its length; a full array is replaced by a
// new one, the values taken earlier keeping the old. Keys keep the arrays
// alive as they keep the page's keys array.
type pagePtrs struct {
	strs  []string
	times []time.Time
	nums  []int64
}

func (pp *pagePtrs) str(s string) *string {
	if len(pp.strs) == cap(pp.strs) {
		pp.strs = make([]string, 0, 16)
	}
	pp.strs = append(pp.strs, s)
	return &pp.strs[len(pp.strs)-1]
}

func (pp *pagePtrs) time(t time.Time) *time.Time {
	if len(pp.times) == cap(pp.times) {
		pp.times = make([]time.Time, 0, 16)
	}
	pp.times = append(pp.times, t)
	return &pp.times[len(pp.times)-1]
}

func (pp *pagePtrs) num(n int64) *int64 {
	if len(pp.nums) == cap(pp.nums) {
		pp.nums = make([]int64, 0, 16)
	}
	pp.nums = append(pp.nums, n)
	return &pp.nums[len(pp.nums)-1]
}

// rawKey2Key fills k from a row's values as scanKey reads them; what k
// points to is taken from pp.
func rawKey2Key(k *apikey.Key, rk *rawKey, f *[keyFields]string, h *[keyFields][]byte, pp *pagePtrs) error {
	str := func(i int) *string {
		if rk.null[i] {
			return nil
		}
		return pp.str(f[i])
	}
	at := func(i int) time.Time { return time.UnixMicro(rk.nums[i] + pgEpoch).UTC() }
	atPtr := func(i int) *time.Time {
		if rk.null[i] {
			return nil
		}
		return pp.time(at(i))
	}
	*k = apikey.Key{
		ID: f[kID], AccountID: f[kAccountID], Name: f[kName], Type: f[kType], SecretHash: h[kSecretHash],
		Status: f[kStatus], Managed: rk.nums[kManaged] == 1, Deleted: rk.nums[kDeleted] == 1,
		LastUsedAt: atPtr(kLastUsedAt), LastUsedIP: str(kLastUsedIP), ExpiresAt: atPtr(kExpiresAt),
		CreatedAt: at(kCreatedAt), UpdatedAt: at(kUpdatedAt),
		CreatedBy:      apikey.Actor{Kind: f[kCreatedByKind], ID: f[kCreatedByID], RequestID: f[kCreatedByRequest]},
		KeyHint:        f[kKeyHint], // NULL: a key from before hints were kept
		NameKey:        f[kNameKey], // NULL: written by a binary from before 00009; the next start fills it
		PrevSecretHash: h[kPrevSecretHash], PrevSecretExpiresAt: atPtr(kPrevSecretExpiresAt),
	}
	cr := store.CreditColumns{RefillAmount: rk.nums[kCreditsRefillAmount], RefillInterval: f[kCreditsRefillInterval],
		RefillDay: rk.nums[kCreditsRefillDay], RefilledAt: rk.nums[kCreditsRefilledAt]}
	if !rk.null[kCreditsRemaining] {
		cr.Remaining = pp.num(rk.nums[kCreditsRemaining])
	}
	// From here on as scanKey.
	var err error
	if k.Permissions, err = keymaps.Permissions(f[kPermissions]); err != nil {
		return fmt.Errorf("postgres: key %s permissions: %w", k.ID, err)
	}
	if k.Metadata, err = keymaps.Metadata(f[kMetadata]); err != nil {
		return fmt.Errorf("postgres: key %s metadata: %w", k.ID, err)
	}
	if k.AllowedNetworks, err = store.DecodeNetworks(f[kAllowedNetworks]); err != nil {
		return fmt.Errorf("postgres: key %s allowed_networks: %w", k.ID, err)
	}
	k.RateLimit = store.DecodeRateLimit(rk.nums[kRateLimit], rk.nums[kRateWindow])
	if k.Credits, err = cr.Decode(); err != nil {
		return fmt.Errorf("postgres: key %s: %w", k.ID, err)
	}
	return nil
}
