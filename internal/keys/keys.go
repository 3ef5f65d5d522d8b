// Package keys defines the API key token format: how secrets are minted,
// classified, checksummed and hashed. It touches no store.
package keys

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"strings"
	"unsafe"
)

// Kind is what a bearer token claims to be, judged from its shape alone.
type Kind int

const (
	KindUnknown Kind = iota
	KindJWT
	KindSecret
	KindPublishable
)

func (k Kind) String() string {
	switch k {
	case KindJWT:
		return "jwt"
	case KindSecret:
		return "secret_key"
	case KindPublishable:
		return "publishable_key"
	}
	return "unknown"
}

const (
	alphabet     = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	randomLen    = 32 // 32 base62 characters ≈ 190 bits
	checksumLen  = 6  // base62 CRC32: 62^6 > 2^32
	prefixLen    = len("sk_live_")
	tokenLen     = prefixLen + randomLen + checksumLen
	classifySpan = 32 // the seeds: "sk_ within the first 32 characters"
	idRandomLen  = 24
)

// MaxTokenLen bounds what the server even looks at; JWTs from real providers stay well below it.
const MaxTokenLen = 4096

var (
	ErrMalformed = errors.New("malformed key")
	ErrChecksum  = errors.New("key checksum mismatch")
)

// Classify tells JWTs, secret keys and publishable keys apart. A token shaped
// like a JWT is a JWT even if "sk_" or "pk_" occurs in it by chance.
func Classify(token string) Kind {
	if looksLikeJWT(token) {
		return KindJWT
	}
	head := token
	if len(head) > classifySpan {
		head = head[:classifySpan]
	}
	s, p := strings.Index(head, "sk_"), strings.Index(head, "pk_")
	switch {
	case s >= 0 && (p < 0 || s < p):
		return KindSecret
	case p >= 0:
		return KindPublishable
	}
	return KindUnknown
}

// IsSandbox reports whether a key token selects the sandbox repository.
func IsSandbox(token string) bool { return strings.Contains(token, "_test_") }

// looksLikeJWT: three dot-separated base64url parts, the first two
// non-empty, the first a JSON object with "alg". Every bearer token is
// classified, so the parts are cut out in place (strings.Split allocated
// a slice per request).
func looksLikeJWT(token string) bool {
	if strings.Count(token, ".") != 2 {
		return false
	}
	first, rest, _ := strings.Cut(token, ".")
	second, third, _ := strings.Cut(rest, ".")
	if first == "" || second == "" {
		return false
	}
	for _, p := range [3]string{first, second, third} {
		for i := 0; i < len(p); i++ {
			c := p[i]
			if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(first)
	if err != nil {
		return false
	}
	var hdr struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(raw, &hdr) == nil && hdr.Alg != nil
}

// Parsed is a key token that passed the format and checksum checks.
type Parsed struct {
	Kind    Kind // KindSecret or KindPublishable
	Sandbox bool
}

// Parse checks a key token's exact shape and checksum, so that a mistyped or
// forged token is rejected before any store lookup.
func Parse(token string) (Parsed, error) {
	if len(token) != tokenLen {
		return Parsed{}, ErrMalformed
	}
	var p Parsed
	switch token[:3] {
	case "sk_":
		p.Kind = KindSecret
	case "pk_":
		p.Kind = KindPublishable
	default:
		return Parsed{}, ErrMalformed
	}
	switch token[3:prefixLen] {
	case "live_":
	case "test_":
		p.Sandbox = true
	default:
		return Parsed{}, ErrMalformed
	}
	body := token[:prefixLen+randomLen]
	for i := prefixLen; i < len(token); i++ {
		if !inAlphabet[token[i]] {
			return Parsed{}, ErrMalformed
		}
	}
	// Every request's key (and verify's) is parsed: the checksum is
	// compared without the two allocations checksum makes.
	var sum [checksumLen]byte
	if string(appendChecksum(sum[:0], body)) != token[prefixLen+randomLen:] {
		return Parsed{}, ErrChecksum
	}
	return p, nil
}

// inAlphabet marks the bytes of alphabet.
var inAlphabet = func() (t [256]bool) {
	for i := range len(alphabet) {
		t[alphabet[i]] = true
	}
	return t
}()

// New mints a key token of the given kind and mode.
func New(kind Kind, sandbox bool) (string, error) {
	var b strings.Builder
	b.Grow(tokenLen)
	switch kind {
	case KindSecret:
		b.WriteString("sk_")
	case KindPublishable:
		b.WriteString("pk_")
	default:
		return "", errors.New("keys: can only mint secret or publishable keys")
	}
	if sandbox {
		b.WriteString("test_")
	} else {
		b.WriteString("live_")
	}
	r, err := randomString(randomLen)
	if err != nil {
		return "", err
	}
	b.WriteString(r)
	b.WriteString(checksum(b.String()))
	return b.String(), nil
}

// NewID returns a fresh API key id, "key_" + 24 base62 characters.
func NewID() (string, error) {
	r, err := randomString(idRandomLen)
	if err != nil {
		return "", err
	}
	return "key_" + r, nil
}

// Hash is what the store keeps instead of the secret. The secret carries
// ~190 random bits, so a fast hash is not brute-forceable and lookups stay an
// index seek.
func Hash(token string) []byte {
	sum := Sum(token)
	return sum[:]
}

// Sum is Hash as an array, without allocating: every authenticated request
// hashes its key (verify a second one), and []byte(token) escaped to the
// heap through sha256. sha256 only reads its input, so it is given the
// string's bytes as they are. TestSumIsSHA256 holds it to sha256.Sum256.
func Sum(token string) [sha256.Size]byte {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(token), len(token))) //nolint:gosec // G103: read only, by sha256, which neither keeps nor writes the bytes
}

func checksum(s string) string {
	return string(appendChecksum(make([]byte, 0, checksumLen), s))
}

// appendChecksum appends s's checksum (checksumLen base62 characters of its
// CRC-32, IEEE) to b. The CRC is computed here, bytewise from crc32's
// table, because crc32.ChecksumIEEE([]byte(s)) copies s to the heap (its
// implementation is chosen at run time, so the slice escapes).
// TestChecksumIsCRC32 and FuzzChecksumRoundTrip hold it to
// crc32.ChecksumIEEE.
func appendChecksum(b []byte, s string) []byte {
	v := ^uint32(0)
	for i := 0; i < len(s); i++ {
		v = crc32.IEEETable[byte(v)^s[i]] ^ v>>8
	}
	v = ^v
	var out [checksumLen]byte
	for i := checksumLen - 1; i >= 0; i-- {
		out[i] = alphabet[v%62]
		v /= 62
	}
	return append(b, out[:]...)
}

// randomString draws n base62 characters from crypto/rand, rejecting bytes
// >= 248 so every character is equally likely.
func randomString(n int) (string, error) {
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", err
		}
		for _, c := range buf {
			if c < 248 && len(out) < n {
				out = append(out, alphabet[c%62])
			}
		}
	}
	return string(out), nil
}

// Hint is what may be shown of a secret so that a person recognises it
// (sk_live_…Wx9Q): its prefix and last four characters, 4 of the ~38 random
// and checksum characters, far from enough to use it.
func Hint(secret string) string {
	prefix, rest, ok := strings.Cut(secret, "_")
	if !ok {
		return ""
	}
	mode, rest, ok := strings.Cut(rest, "_")
	if !ok || len(rest) < 8 {
		return ""
	}
	return prefix + "_" + mode + "_…" + rest[len(rest)-4:]
}

// NewEventID returns a random audit event id (evt_…).
func NewEventID() (string, error) {
	r, err := randomString(idRandomLen)
	if err != nil {
		return "", err
	}
	return "evt_" + r, nil
}
