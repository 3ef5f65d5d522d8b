package client

// The shape of every key the service issues, one regular expression per key
// type (RE2 and PCRE alike): the literal prefix, 32 random base62 characters
// and the 6-character base62 checksum, between word boundaries. For secret
// scanners and pre-commit hooks that look for HSRCPAY keys in code; a match
// whose checksum fails is no key. The same strings are in the spec's
// description and the README (the server's internal/keys holds the
// originals, and a test keeps these equal to them).
const (
	// PatternSecretLive matches live secret keys (sk_live_…).
	PatternSecretLive = `\bsk_live_[0-9A-Za-z]{38}\b` //nolint:gosec // a pattern published for scanners, not a credential
	// PatternSecretTest matches sandbox secret keys (sk_test_…).
	PatternSecretTest = `\bsk_test_[0-9A-Za-z]{38}\b` //nolint:gosec // a pattern published for scanners, not a credential
	// PatternPublishableLive matches live publishable keys (pk_live_…).
	PatternPublishableLive = `\bpk_live_[0-9A-Za-z]{38}\b`
	// PatternPublishableTest matches sandbox publishable keys (pk_test_…).
	PatternPublishableTest = `\bpk_test_[0-9A-Za-z]{38}\b`
)
