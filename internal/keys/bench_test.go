package keys_test

import (
	"testing"

	"github.com/hsrcpay/apikeys/internal/keys"
)

// What the authenticate middleware does with a key token before any store
// access: classify it, check its shape and checksum, hash it.

var (
	sinkKind   keys.Kind
	sinkParsed keys.Parsed
	sinkHash   []byte
	sinkString string
)

func benchToken(b *testing.B) string {
	b.Helper()
	tok, err := keys.New(keys.KindSecret, true)
	if err != nil {
		b.Fatal(err)
	}
	return tok
}

func BenchmarkClassify(b *testing.B) {
	tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkKind = keys.Classify(tok)
	}
}

// A JWT-shaped token takes the slow branch (split, base64, JSON header).
func BenchmarkClassifyJWT(b *testing.B) {
	tok := "eyJhbGciOiJFUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1c2VyXzEyMyJ9.c2lnbmF0dXJlX2J5dGVzX2hlcmU"
	b.ReportAllocs()
	for b.Loop() {
		sinkKind = keys.Classify(tok)
	}
}

func BenchmarkParse(b *testing.B) {
	tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		p, err := keys.Parse(tok)
		if err != nil {
			b.Fatal(err)
		}
		sinkParsed = p
	}
}

func BenchmarkHash(b *testing.B) {
	tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkHash = keys.Hash(tok)
	}
}

// BenchmarkClassifyParseHash is the whole per-request token work.
func BenchmarkClassifyParseHash(b *testing.B) {
	tok := benchToken(b)
	b.ReportAllocs()
	for b.Loop() {
		sinkKind = keys.Classify(tok)
		p, err := keys.Parse(tok)
		if err != nil {
			b.Fatal(err)
		}
		sinkParsed = p
		sinkHash = keys.Hash(tok)
	}
}

// BenchmarkNew mints a secret (crypto/rand + checksum), as create and regenerate do.
func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		tok, err := keys.New(keys.KindSecret, true)
		if err != nil {
			b.Fatal(err)
		}
		sinkString = tok
	}
}
