package apikeys

import (
	"encoding/base64"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/store"
)

// Cursors are opaque to clients: base64url of a tagged position, so that a
// key cursor is never taken for an audit one and a made-up one is refused.
const (
	keyCursorTag   = "k1"
	auditCursorTag = "a1"
)

func badCursor() *apierr.Error {
	return apierr.Validation([]apierr.FieldError{{Location: "query", Field: "cursor", Reason: "not a cursor this list returned"}})
}

func encodeKeyCursor(c store.KeyCursor) string {
	return base64.RawURLEncoding.EncodeToString([]byte(keyCursorTag + ":" + strconv.FormatInt(c.CreatedAt.UnixNano(), 10) + ":" + c.ID))
}

func decodeKeyCursor(s string) (*store.KeyCursor, *apierr.Error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return nil, badCursor()
	}
	parts := strings.SplitN(string(b), ":", 3)
	if len(parts) != 3 || parts[0] != keyCursorTag || !strings.HasPrefix(parts[2], "key_") {
		return nil, badCursor()
	}
	ns, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return nil, badCursor()
	}
	return &store.KeyCursor{CreatedAt: time.Unix(0, ns).UTC(), ID: parts[2]}, nil
}

func encodeAuditCursor(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(auditCursorTag + ":" + strconv.FormatInt(seq, 10)))
}

func decodeAuditCursor(s string) (int64, *apierr.Error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return 0, badCursor()
	}
	tag, n, ok := strings.Cut(string(b), ":")
	seq, err := strconv.ParseInt(n, 10, 64)
	if !ok || tag != auditCursorTag || err != nil || seq < 1 {
		return 0, badCursor()
	}
	return seq, nil
}
