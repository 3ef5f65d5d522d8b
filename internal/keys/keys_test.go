package keys

import (
	"bytes"
	"crypto/sha256"
	"hash/crc32"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestClassify(t *testing.T) {
	jwtHeader := "eyJhbGciOiJIUzI1NiJ9" // {"alg":"HS256"}
	for _, tc := range []struct {
		token string
		want  Kind
	}{
		{"sk_live_abc", KindSecret},
		{"sk_test_abc", KindSecret},
		{"pk_live_abc", KindPublishable},
		{"pk_test_abc", KindPublishable},
		{"rk_live_abc", KindUnknown},
		{"x_sk_live_abc", KindSecret},
		{strings.Repeat("a", 29) + "sk_", KindSecret},  // sk_ ends at the 32nd character
		{strings.Repeat("a", 30) + "sk_", KindUnknown}, // one past
		{"pk_then_sk_", KindPublishable},               // the first marker wins
		{jwtHeader + ".sk_live_abc.sig", KindJWT},      // JWT-shaped wins over sk_
		{jwtHeader + ".pk_test_abc.", KindJWT},
		{"eyJub3QiOiJhbGcifQ.sk_live.sig", KindSecret}, // header without alg: not a JWT
		{"a.b.c", KindUnknown},
		{"", KindUnknown},
	} {
		if got := Classify(tc.token); got != tc.want {
			t.Errorf("Classify(%q) = %v, want %v", tc.token, got, tc.want)
		}
	}
}

func TestNewParseRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, kind := range []Kind{KindSecret, KindPublishable} {
		for _, sandbox := range []bool{false, true} {
			for i := 0; i < 200; i++ {
				tok, err := New(kind, sandbox)
				if err != nil {
					t.Fatal(err)
				}
				if seen[tok] {
					t.Fatal("duplicate token")
				}
				seen[tok] = true
				p, err := Parse(tok)
				if err != nil || p.Kind != kind || p.Sandbox != sandbox || IsSandbox(tok) != sandbox || Classify(tok) != kind {
					t.Fatalf("%q: %+v %v", tok, p, err)
				}
			}
		}
	}
}

func TestParseRejects(t *testing.T) {
	tok, _ := New(KindSecret, true)
	for name, bad := range map[string]string{
		"empty":          "",
		"short":          tok[:len(tok)-1],
		"long":           tok + "0",
		"wrong kind":     "rk" + tok[2:],
		"wrong mode":     "sk_prod_" + tok[8:],
		"non-base62":     tok[:20] + "-" + tok[21:],
		"checksum":       tok[:len(tok)-1] + string(other(tok[len(tok)-1])),
		"random changed": tok[:10] + string(other(tok[10])) + tok[11:],
	} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("%s: Parse(%q) accepted", name, bad)
		}
	}
}

func other(c byte) byte {
	if c == 'a' {
		return 'b'
	}
	return 'a'
}

func FuzzParse(f *testing.F) {
	tok, _ := New(KindSecret, false)
	f.Add(tok)
	f.Add("pk_test_" + strings.Repeat("0", 38))
	f.Add("eyJhbGciOiJIUzI1NiJ9.sk_live_abc.sig")
	f.Fuzz(func(t *testing.T, s string) {
		p, err := Parse(s)
		if err == nil {
			// Anything Parse accepts is classified consistently.
			if Classify(s) != p.Kind || IsSandbox(s) != p.Sandbox || len(s) != tokenLen {
				t.Fatalf("inconsistent: %q %+v", s, p)
			}
		}
		_ = Classify(s)
	})
}

func TestHint(t *testing.T) {
	for _, kind := range []Kind{KindSecret, KindPublishable} {
		for _, sandbox := range []bool{false, true} {
			k, err := New(kind, sandbox)
			if err != nil {
				t.Fatal(err)
			}
			h := Hint(k)
			want := k[:8] + "…" + k[len(k)-4:]
			if h != want || strings.Contains(h, k[8:len(k)-4]) {
				t.Fatalf("Hint(%s) = %q, want %q", k, h, want)
			}
		}
	}
	if Hint("garbage") != "" || Hint("sk_test_") != "" {
		t.Fatal("a string that is not a key has no hint")
	}
}

// TestChecksumIsCRC32: appendChecksum's bytewise CRC is crc32.ChecksumIEEE,
// over random strings of any bytes and lengths (token bodies included).
func TestChecksumIsCRC32(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // test inputs, not secrets
	for n := range 5000 {
		b := make([]byte, n%200)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		v := crc32.ChecksumIEEE(b)
		var want [checksumLen]byte
		for i := checksumLen - 1; i >= 0; i-- {
			want[i] = alphabet[v%62]
			v /= 62
		}
		if got := checksum(string(b)); got != string(want[:]) {
			t.Fatalf("checksum(%q) = %q, want %q", b, got, want[:])
		}
	}
}

// TestSumIsSHA256: Sum (and Hash) are sha256.Sum256 of the token's bytes,
// for tokens of any bytes and lengths (the empty one included), and Sum
// allocates nothing.
func TestSumIsSHA256(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4)) //nolint:gosec // test inputs, not secrets
	for n := range 3000 {
		b := make([]byte, n%300)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		want := sha256.Sum256(b)
		if got := Sum(string(b)); got != want {
			t.Fatalf("Sum(%q) = %x, want %x", b, got, want)
		}
		if got := Hash(string(b)); !bytes.Equal(got, want[:]) {
			t.Fatalf("Hash(%q) = %x, want %x", b, got, want)
		}
	}
	tok, err := New(KindSecret, true)
	if err != nil {
		t.Fatal(err)
	}
	var sink [sha256.Size]byte
	if n := testing.AllocsPerRun(100, func() { sink = Sum(tok) }); n != 0 {
		t.Fatalf("Sum allocates %v times", n)
	}
	_ = sink
}

// TestClassifyAllocatesNothing: every bearer token is classified; a key
// (not a JWT) must not cost an allocation to tell.
func TestClassifyAllocatesNothing(t *testing.T) {
	tok, err := New(KindSecret, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{tok, "a.b.c" + tok} {
		if n := testing.AllocsPerRun(100, func() { Classify(s) }); n != 0 {
			t.Fatalf("Classify(%q) allocates %v times", s, n)
		}
	}
}
