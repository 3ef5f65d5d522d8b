package apikeys

import (
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/namekey"
)

// maxNameLen is the spec's maxLength for names, in characters.
const maxNameLen = 100

// CleanName returns the name as it is stored (NFC), or why it is refused.
// Names are for people: nothing invisible or direction-changing may make one
// key's name look like another's ("Managed secret key" + U+200B), so control,
// format, private-use, surrogate and separator characters other than the plain
// space are refused, as are noncharacters and white space at either end.
//
// Names that look like another key's are not refused here but by the store:
// a name is unique among the account's live keys (per mode) under
// namekey.Key (white space collapsed, TS #39 confusable skeleton, marks and
// default-ignorable characters dropped), so "Managed s\u0435cret key"
// (Cyrillic e), "Managed  secret key" and "Managed secret key\u0301" are
// duplicates of "Managed secret key" (409). Runs of spaces are accepted and
// stored as sent: refusing them (400) would hide the real conflict from the
// caller and refuse renaming a key to a name stored before this rule, and the
// key must collapse runs anyway, since dropping invisible characters and
// marks can make one. A name whose key is empty (only marks or invisible
// characters) shows nothing to tell it by and is refused.
func CleanName(name string) (string, *apierr.Error) {
	refuse := func(reason string) (string, *apierr.Error) {
		return "", apierr.Validation([]apierr.FieldError{{Location: "body", Field: "/name", Reason: reason}})
	}
	if !utf8.ValidString(name) {
		return refuse("must be valid UTF-8")
	}
	n := norm.NFC.String(name)
	if n == "" || utf8.RuneCountInString(n) > maxNameLen {
		return refuse("must be 1 to 100 characters")
	}
	first, _ := utf8.DecodeRuneInString(n)
	last, _ := utf8.DecodeLastRuneInString(n)
	if unicode.IsSpace(first) || unicode.IsSpace(last) {
		return refuse("must not begin or end with white space")
	}
	for _, r := range n {
		switch {
		case unicode.In(r, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs, unicode.Zl, unicode.Zp):
			return refuse("must not contain control, format (zero-width, bidi), private-use or line-separator characters")
		case unicode.Is(unicode.Zs, r) && r != ' ':
			return refuse("the only space allowed is U+0020")
		case isNoncharacter(r):
			return refuse("must not contain Unicode noncharacters")
		}
	}
	if namekey.Key(n) == "" {
		return refuse("must contain a visible character other than a combining mark")
	}
	return n, nil
}

// isNoncharacter reports U+FDD0..U+FDEF and the last two code points of every plane.
func isNoncharacter(r rune) bool {
	return (r >= 0xFDD0 && r <= 0xFDEF) || r&0xFFFE == 0xFFFE
}
