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
