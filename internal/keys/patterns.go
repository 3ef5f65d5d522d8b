package keys

import "regexp"

// The published shape of every key this package issues, one regular
// expression per key type, for secret scanners (GitHub's partner program and
// any other): the literal prefix, 32 random base62 characters and the
// 6-character base62 checksum, between word boundaries so that a longer run
// of letters and digits (or a prefix glued to other word characters) is not
// a key. The spec's description and the README quote these exact strings
// (TestPatternsArePublished); a match still has to pass Parse's checksum.
const (
	PatternSecretLive      = `\bsk_live_[0-9A-Za-z]{38}\b` //nolint:gosec // a pattern published for scanners, not a credential
	PatternSecretTest      = `\bsk_test_[0-9A-Za-z]{38}\b` //nolint:gosec // a pattern published for scanners, not a credential
	PatternPublishableLive = `\bpk_live_[0-9A-Za-z]{38}\b`
	PatternPublishableTest = `\bpk_test_[0-9A-Za-z]{38}\b`
)

// Patterns maps each key type's name, as reports and docs call it, to its pattern.
var Patterns = map[string]string{
	"secret_live":      PatternSecretLive,
	"secret_test":      PatternSecretTest,
	"publishable_live": PatternPublishableLive,
	"publishable_test": PatternPublishableTest,
}

// PatternFor is the compiled pattern of keys of kind in a mode.
func PatternFor(kind Kind, sandbox bool) *regexp.Regexp {
	switch {
	case kind == KindSecret && !sandbox:
		return patternSecretLive
	case kind == KindSecret:
		return patternSecretTest
	case kind == KindPublishable && !sandbox:
		return patternPublishableLive
	case kind == KindPublishable:
		return patternPublishableTest
	}
	return nil
}

var (
	patternSecretLive      = regexp.MustCompile(PatternSecretLive)
	patternSecretTest      = regexp.MustCompile(PatternSecretTest)
	patternPublishableLive = regexp.MustCompile(PatternPublishableLive)
	patternPublishableTest = regexp.MustCompile(PatternPublishableTest)
)
