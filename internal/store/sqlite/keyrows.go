package sqlite

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/internal/keymaps"
)

// joinedKeyColumns are keyColumns as one text, the columns joined by NULs,
// which GetKey and ListKeys read (scanJoinedKey): the driver copies each
// text column into a string of its own and database/sql boxes and converts
// each, ~0.1 µs and two allocations a column, 30 columns a key (~1 300 of a
// page's 1 400 allocations), while SQLite joins them in one allocation and
// the key's strings are cut from it.
//
// concat_ws skips NULLs, so a column that may be NULL is written as "" for
// NULL and "v" and its text otherwise; the blobs as their hex. A blob
// column holding anything but a blob (or NULL where allowed) is written as
// NULL, which leaves the row short of keyFields fields, as does a NUL in a
// text (one field more): such a row is read again column by column
// (scanKey), which then decides, so the result is always scanKey's.
var joinedKeyColumns = `concat_ws(char(0), id, account_id, name, type,
	iif(typeof(secret_hash) = 'blob', hex(secret_hash), NULL), permissions, metadata, status, managed, deleted,
	` + nullable(`last_used_at`) + `, ` + nullable(`last_used_ip`) + `, ` + nullable(`expires_at`) + `, created_at, updated_at,
	CASE typeof(prev_secret_hash) WHEN 'null' THEN '' WHEN 'blob' THEN 'v' || hex(prev_secret_hash) END,
	` + nullable(`prev_secret_expires_at`) + `, created_by_kind, created_by_id, created_by_request,
	` + nullable(`key_hint`) + `, ` + nullable(`name_key`) + `, allowed_networks, rate_limit, rate_window_seconds,
	` + nullable(`credits_remaining`) + `, credits_refill_amount, credits_refill_interval, credits_refill_day, credits_refilled_at)`

// getKeyJoinedSQL is GetKey's statement.
var getKeyJoinedSQL = `SELECT ` + joinedKeyColumns + ` FROM api_keys WHERE id = ?`

// nullable is a column that may be NULL as joinedKeyColumns writes it.
func nullable(col string) string {
	return `iif(` + col + ` IS NULL, '', 'v' || ` + col + `)`
}

// keyFields is how many columns keyColumns (and joinedKeyColumns) name.
const keyFields = 30

// scanJoinedKey reads a key from a row of joinedKeyColumns. false (and no
// error) when the row is to be read column by column instead: it does not
// split into keyFields fields, or a number or flag is not the text of an
// integer as database/sql reads it (a real, say), where scanKey decides.
//
// A page's keys come from pb (see pageBuf; nil: the key's own allocations);
// the key keeps what it took from it.
func scanJoinedKey(row string, pb *pageBuf) (*apikey.Key, bool, error) {
	var buf [keyFields]string
	f := buf[:0]
	for len(f) < keyFields-1 {
		field, rest, found := strings.Cut(row, "\x00")
		if !found {
			return nil, false, nil
		}
		f, row = append(f, field), rest
	}
	if strings.IndexByte(row, 0) >= 0 {
		return nil, false, nil
	}
	f = append(f, row)

	k := pb.key()
	var (
		ok                   = true
		rateLimit, rateWin   int64
		cr                   store.CreditColumns
		createdAt, updatedAt string
	)
	// num and flag read what database/sql's Scan into an int64 or a bool
	// reads the same way; anything else clears ok.
	num := func(s string) int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			ok = false
		}
		return n
	}
	flag := func(s string) bool {
		if s != "0" && s != "1" {
			ok = false
		}
		return s == "1"
	}
	// opt is a nullable column: "" NULL, else "v" and its text.
	opt := func(s string) (string, bool) {
		if s == "" {
			return "", false
		}
		return s[1:], true
	}
	k.ID, k.AccountID, k.Name, k.Type = f[0], f[1], f[2], f[3]
	var (
		err   error
		isHex bool
	)
	if k.SecretHash, isHex = unhex(pb.hashBuf(), f[4]); !isHex {
		return nil, false, nil // not hex() of a blob: scanKey decides
	}
	perms, meta := f[5], f[6]
	k.Status = f[7]
	k.Managed, k.Deleted = flag(f[8]), flag(f[9])
	lastUsedAt, hasLastUsed := opt(f[10])
	if ip, has := opt(f[11]); has {
		k.LastUsedIP = pb.str(ip)
	}
	expiresAt, hasExpires := opt(f[12])
	createdAt, updatedAt = f[13], f[14]
	if prev, has := opt(f[15]); has {
		if k.PrevSecretHash, isHex = unhex(pb.hashBuf(), prev); !isHex {
			return nil, false, nil
		}
	}
	prevExpiresAt, hasPrevExpires := opt(f[16])
	k.CreatedBy = apikey.Actor{Kind: f[17], ID: f[18], RequestID: f[19]}
	k.KeyHint, _ = opt(f[20]) // NULL: a key from before hints were kept
	k.NameKey, _ = opt(f[21]) // NULL: written by a binary from before 00009; the next open fills it
	networks := f[22]
	rateLimit, rateWin = num(f[23]), num(f[24])
	if rem, has := opt(f[25]); has {
		n := num(rem)
		cr.Remaining = &n
	}
	cr.RefillAmount, cr.RefillInterval, cr.RefillDay, cr.RefilledAt = num(f[26]), f[27], num(f[28]), num(f[29])
	if !ok {
		return nil, false, nil
	}

	// From here on as scanKey reads the values.
	if k.Permissions, err = keymaps.Permissions(perms); err != nil {
		return nil, true, fmt.Errorf("sqlite: key %s permissions: %w", k.ID, err)
	}
	if k.Metadata, err = keymaps.Metadata(meta); err != nil {
		return nil, true, fmt.Errorf("sqlite: key %s metadata: %w", k.ID, err)
	}
	if k.AllowedNetworks, err = store.DecodeNetworks(networks); err != nil {
		return nil, true, fmt.Errorf("sqlite: key %s allowed_networks: %w", k.ID, err)
	}
	k.RateLimit = store.DecodeRateLimit(rateLimit, rateWin)
	if k.Credits, err = cr.Decode(); err != nil {
		return nil, true, fmt.Errorf("sqlite: key %s: %w", k.ID, err)
	}
	if k.CreatedAt, err = parseTime(createdAt); err != nil {
		return nil, true, err
	}
	if k.UpdatedAt, err = parseTime(updatedAt); err != nil {
		return nil, true, err
	}
	for _, p := range []struct {
		src string
		has bool
		dst **time.Time
	}{{lastUsedAt, hasLastUsed, &k.LastUsedAt}, {expiresAt, hasExpires, &k.ExpiresAt}, {prevExpiresAt, hasPrevExpires, &k.PrevSecretExpiresAt}} {
		if p.has {
			t, err := parseTime(p.src)
			if err != nil {
				return nil, true, err
			}
			*p.dst = pb.time(t)
		}
	}
	return k, true, nil
}

// pageBuf holds a page's keys and the small values they point to in a few
// arrays, so that reading a page of n keys costs a handful of allocations
// rather than one a key, one a hash and one a pointer field (a last-used IP
// or time): ~20% of a list page's allocations went to those, and with them
// a share of its GC. Each value is cut from its array capped at its length;
// a full array is replaced by a new one, the values taken earlier keeping
// the old. A key from a page keeps the page's arrays alive as long as it
// lives, as PostgreSQL's page of keys (keyrows.go there) does too.
// A nil *pageBuf hands out allocations of their own (one key's read).
type pageBuf struct {
	hashes []byte
	keys   []apikey.Key
	strs   []string
	times  []time.Time
}

// newPageBuf is a pageBuf for a page of up to size keys.
func newPageBuf(size int) *pageBuf {
	return &pageBuf{hashes: make([]byte, 0, 32*size), keys: make([]apikey.Key, 0, size)}
}

func (pb *pageBuf) key() *apikey.Key {
	if pb == nil {
		return new(apikey.Key)
	}
	if len(pb.keys) == cap(pb.keys) {
		pb.keys = make([]apikey.Key, 0, max(4, cap(pb.keys)))
	}
	pb.keys = pb.keys[:len(pb.keys)+1]
	return &pb.keys[len(pb.keys)-1]
}

func (pb *pageBuf) str(s string) *string {
	if pb == nil {
		return &s
	}
	if len(pb.strs) == cap(pb.strs) {
		pb.strs = make([]string, 0, max(4, cap(pb.keys)))
	}
	pb.strs = append(pb.strs, s)
	return &pb.strs[len(pb.strs)-1]
}

func (pb *pageBuf) time(t time.Time) *time.Time {
	if pb == nil {
		return &t
	}
	if len(pb.times) == cap(pb.times) {
		pb.times = make([]time.Time, 0, max(4, cap(pb.keys)))
	}
	pb.times = append(pb.times, t)
	return &pb.times[len(pb.times)-1]
}

// hashBuf is the buffer unhex appends a hash to; nil: the hash's own.
func (pb *pageBuf) hashBuf() *[]byte {
	if pb == nil {
		return nil
	}
	return &pb.hashes
}

// scanJoinedKeys reads the keys of rows (one joinedKeyColumns text each)
// and closes it; false (and no error) when one of them is to be read column
// by column (scanJoinedKey), and with it the whole page.
func scanJoinedKeys(rows *sql.Rows, size int) ([]*apikey.Key, bool, error) {
	defer func() { _ = rows.Close() }() // rows.Err below reports a failed read
	out := make([]*apikey.Key, 0, size)
	var row string
	pb := newPageBuf(size) // the keys keep it
	for rows.Next() {
		if err := rows.Scan(&row); err != nil {
			return nil, false, err
		}
		k, ok, err := scanJoinedKey(row, pb)
		if err != nil || !ok {
			return nil, ok, err
		}
		out = append(out, k)
	}
	if err := rows.Err(); err != nil {
		return nil, false, err
	}
	return out, true, nil
}

// unhex appends the bytes of s, hex() of a blob (upper case), to *buf and
// returns them, capped at their length; false if s is not such a text.
// Never nil, as database/sql's copy of an empty blob is not.
func unhex(buf *[]byte, s string) ([]byte, bool) {
	if len(s)%2 != 0 {
		return nil, false
	}
	if buf == nil {
		buf = new([]byte) // one key's: a buffer of its own
	}
	b := *buf
	if b == nil || cap(b)-len(b) < len(s)/2 {
		b = make([]byte, 0, max(len(s)/2, 2*cap(b))) // the earlier ones keep the old array
	}
	start := len(b)
	for i := 0; i < len(s); i += 2 {
		hi, lo := unhexDigit(s[i]), unhexDigit(s[i+1])
		if hi > 15 || lo > 15 {
			return nil, false
		}
		b = append(b, hi<<4|lo)
	}
	*buf = b
	return b[start:len(b):len(b)], true
}

func unhexDigit(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}
