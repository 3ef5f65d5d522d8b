package keys

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"hash/crc32"
	"strings"
	"testing"
)

// FuzzClassify checks Classify against the rules the spec states, written
// out independently: a JWT is three base64url segments whose first decodes
// to a JSON header with "alg"; otherwise the first of "sk_"/"pk_" within the
// first 32 bytes decides; nothing else counts.
func FuzzClassify(f *testing.F) {
	for _, s := range []string{
		"", "sk_live_abc", "pk_test_abc", "x_sk_live_abc", "pk_then_sk_", "rk_live_abc",
		strings.Repeat("a", 29) + "sk_", strings.Repeat("a", 30) + "sk_",
		"eyJhbGciOiJIUzI1NiJ9.sk_live_abc.sig", "eyJhbGciOiJIUzI1NiJ9.pk_test_abc.",
		"eyJub3QiOiJhbGcifQ.sk_live.sig", "a.b.c", "..", "sk_.sk_.sk_", "e30.e30.e30",
		"eyJhbGciOm51bGx9.x.y", // {"alg":null}
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Classify(s)
		if k != Classify(s) {
			t.Fatalf("Classify(%q) is not deterministic", s)
		}
		if refIsJWT(s) {
			if k != KindJWT {
				t.Fatalf("Classify(%q) = %v, but it is shaped like a JWT", s, k)
			}
			return
		}
		if want := refKind(s); k != want {
			t.Fatalf("Classify(%q) = %v, want %v", s, k, want)
		}
		// Only the first 32 bytes decide a key's kind: what follows them is
		// ignored (the NUL keeps the result from being a JWT and from forming
		// a marker across the cut; the markers after it lie past byte 32).
		head := s
		if len(head) > 32 {
			head = head[:32]
		}
		if got := Classify(head + "\x00" + strings.Repeat("x", 32) + "sk_pk_"); got != k {
			t.Fatalf("Classify(%q) = %v but its first 32 bytes classify as %v", s, k, got)
		}
		if p, err := Parse(s); err == nil && p.Kind != k {
			t.Fatalf("Parse(%q) says %v, Classify %v", s, p.Kind, k)
		}
	})
}

func refIsJWT(s string) bool {
	parts := strings.Split(s, ".")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" {
		return false
	}
	for _, p := range parts {
		if strings.TrimLeft(p, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		return false
	}
	// The header is read as Go reads JSON into a struct (alg matched
	// case-insensitively); it must hold a string "alg".
	var hdr struct {
		Alg *string `json:"alg"`
	}
	return json.Unmarshal(raw, &hdr) == nil && hdr.Alg != nil
}

func refKind(s string) Kind {
	for i := 0; i+3 <= len(s) && i+3 <= 32; i++ {
		switch s[i : i+3] {
		case "sk_":
			return KindSecret
		case "pk_":
			return KindPublishable
		}
	}
	return KindUnknown
}

// FuzzChecksumRoundTrip builds a key from fuzzed random characters, checks
// that it parses back to its kind and mode, that the checksum decodes back
// to the CRC32 of the key's body, and that every single-character change,
// adjacent swap, and change of kind or mode is caught by the checksum (CRC32
// detects every error burst of up to 32 bits, so none may slip through).
func FuzzChecksumRoundTrip(f *testing.F) {
	f.Add([]byte("0123456789abcdefghijklmnopqrstuv"), false, false, uint8(0), uint8(0))
	f.Add([]byte{0xff, 0xfe, 0, 1, 2}, true, true, uint8(37), uint8(60))
	f.Add([]byte(strings.Repeat("z", 40)), false, true, uint8(200), uint8(1))
	f.Add([]byte{}, true, false, uint8(5), uint8(61))
	f.Fuzz(func(t *testing.T, raw []byte, publishable, sandbox bool, pos, delta uint8) {
		var b strings.Builder
		kind := KindSecret
		if publishable {
			kind = KindPublishable
			b.WriteString("pk_")
		} else {
			b.WriteString("sk_")
		}
		if sandbox {
			b.WriteString("test_")
		} else {
			b.WriteString("live_")
		}
		for i := 0; i < randomLen; i++ {
			c := byte(i)
			if i < len(raw) {
				c = raw[i]
			}
			b.WriteByte(alphabet[int(c)%len(alphabet)])
		}
		body := b.String()
		sum := checksum(body)
		if len(sum) != checksumLen || strings.Trim(sum, alphabet) != "" {
			t.Fatalf("checksum(%q) = %q: not %d base62 characters", body, sum, checksumLen)
		}
		if v := decode62(sum); v != uint64(crc32.ChecksumIEEE([]byte(body))) {
			t.Fatalf("checksum(%q) = %q decodes to %d, want the CRC32 %d", body, sum, v, crc32.ChecksumIEEE([]byte(body)))
		}
		tok := body + sum
		p, err := Parse(tok)
		if err != nil || p.Kind != kind || p.Sandbox != sandbox || Classify(tok) != kind || IsSandbox(tok) != sandbox {
			t.Fatalf("Parse(%q) = %+v, %v; want %v sandbox=%v", tok, p, err, kind, sandbox)
		}

		// One character changed, anywhere after the prefix.
		i := prefixLen + int(pos)%(len(tok)-prefixLen)
		j := (strings.IndexByte(alphabet, tok[i]) + 1 + int(delta)%(len(alphabet)-1)) % len(alphabet)
		mustFailChecksum(t, "substitution", tok[:i]+string(alphabet[j])+tok[i+1:])
		// Two adjacent, different characters swapped.
		if i+1 < len(tok) && tok[i] != tok[i+1] {
			mustFailChecksum(t, "transposition", tok[:i]+string(tok[i+1])+string(tok[i])+tok[i+2:])
		}
		// The same random part and checksum under another kind or mode.
		other := map[string]string{"sk_": "pk_", "pk_": "sk_", "live_": "test_", "test_": "live_"}
		mustFailChecksum(t, "kind changed", other[tok[:3]]+tok[3:])
		mustFailChecksum(t, "mode changed", tok[:3]+other[tok[3:prefixLen]]+tok[prefixLen:])
	})
}

func mustFailChecksum(t *testing.T, what, tok string) {
	t.Helper()
	if _, err := Parse(tok); !errors.Is(err, ErrChecksum) {
		t.Fatalf("%s: Parse(%q) = %v, want ErrChecksum", what, tok, err)
	}
}

func decode62(s string) uint64 {
	var v uint64
	for i := 0; i < len(s); i++ {
		d := strings.IndexByte(alphabet, s[i])
		if d < 0 {
			panic("decode62: " + s + " is not base62") // the caller checked it is
		}
		v = v*62 + uint64(d)
	}
	return v
}
