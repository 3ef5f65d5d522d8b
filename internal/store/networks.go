package store

import (
	"net/netip"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
)

// EncodeNetworks is how both stores keep a key's allowed networks
// (migration 00012): the canonical prefixes, comma-separated; "" for any
// address. Text rather than an array type, so that both stores hold the same
// bytes and a down migration is one dropped column.
func EncodeNetworks(ps []netip.Prefix) string {
	return strings.Join(apikey.NetworkStrings(ps), ",")
}

// DecodeNetworks reads what EncodeNetworks wrote; nil for "".
func DecodeNetworks(s string) ([]netip.Prefix, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, ",")
	out := make([]netip.Prefix, len(parts))
	for i, p := range parts {
		var err error
		if out[i], err = netip.ParsePrefix(p); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// EncodeRateLimit is how both stores keep a key's own rate limit
// (migration 00013): the limit and the window in seconds; 0, 0 for none.
func EncodeRateLimit(r *apikey.RateLimit) (limit, windowSeconds int64) {
	if r == nil {
		return 0, 0
	}
	return int64(r.Limit), int64(r.Window / time.Second)
}

// DecodeRateLimit reads what EncodeRateLimit wrote; nil for none.
func DecodeRateLimit(limit, windowSeconds int64) *apikey.RateLimit {
	if limit <= 0 || windowSeconds <= 0 {
		return nil
	}
	return &apikey.RateLimit{Limit: int(limit), Window: time.Duration(windowSeconds) * time.Second}
}
