package auditrow

import "testing"

// BenchmarkEncode is what an append does with a create's changes (the map
// internal/apikeys records for a new key) before it is sealed: the value
// normalized and its JSON written once.
func BenchmarkEncode(b *testing.B) {
	changes := map[string]any{
		"name": "bench 1", "type": "SECRET", "status": "active", "managed": false, "expires_at": nil,
		"key_hint": "sk_test_…x7Qa", "metadata": map[string]string{"team": "payments", "env": "ci"},
		"permissions": map[string][]string{"payment": {"create", "read"}, "account:api:key": {"read"}},
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Encode(changes); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendCanonical is what a page read does with each event's
// changes: a create's, as SQLite keeps them (marshal's text, taken as it
// is) and as jsonb prints them (re-formed: members sorted, spaces dropped);
// _memo is Canonical's answer for a text read before.
func BenchmarkAppendCanonical(b *testing.B) {
	stored, norm, err := Encode(map[string]any{
		"name": "bench 1", "type": "SECRET", "status": "active", "managed": false, "expires_at": nil,
		"key_hint": "sk_test_…x7Qa", "metadata": map[string]string{"team": "payments", "env": "ci"},
		"permissions": map[string][]string{"payment": {"create", "read"}, "account:api:key": {"read"}},
	})
	if err != nil {
		b.Fatal(err)
	}
	for name, text := range map[string]string{"sqlite": string(stored), "jsonb": string(jsonbText(nil, norm))} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			var out, scratch []byte
			for b.Loop() {
				var err error
				if out, err = appendCanonical(out[:0], text, &scratch); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"_memo", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				if _, err := Canonical(text); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
