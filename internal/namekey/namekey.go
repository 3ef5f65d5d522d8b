// Package namekey computes the key under which key names must be unique:
// names are for people, so two names that people cannot tell apart are the
// same name. The stores index this key; the use cases only refuse names
// whose key is empty.
package namekey

import (
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// Key is name's uniqueness key:
//
//  1. NFD, then every Default_Ignorable_Code_Point removed (they render as
//     nothing; U+3164 HANGUL FILLER is a letter that looks like a space);
//  2. the Unicode TS #39 skeleton: NFD, each character mapped by
//     confusables.txt (Cyrillic "е" → "e", "0" → "O", "l"/"I"/"1" → "l",
//     fullwidth → ASCII, …), NFD again;
//  3. every nonspacing and enclosing mark (Mn, Me) and default ignorable
//     removed: a mark that renders on or around its base letter ("keý",
//     "key" + U+0301, "Managed secret key" + U+20DD) is not enough for people
//     to tell two names apart, so names differing only in marks collide.
//     TS #39's skeleton keeps marks; this is stricter on purpose;
//  4. white space collapsed: runs become one U+0020, none at either end
//     (after 1 and 3, "a \u034F b" would otherwise differ from "a b").
//
// Case is kept, as TS #39 keeps it: "api" and "API" look different. NFKC is
// not applied: confusables.txt already maps the compatibility characters
// that look the same (fullwidth, ligatures), and NFKC would also merge ones
// that look different (superscripts, circled digits).
//
// The key is only compared, never shown. It is a function of the name, so
// "collides with" is an equivalence: a unique index on it is the rule.
func Key(name string) string {
	s := confusables.Skeleton(strings.Map(dropIgnorable, norm.NFD.String(name)))
	var b strings.Builder
	b.Grow(len(s))
	space := false
	for _, r := range s {
		switch {
		case unicode.In(r, unicode.Mn, unicode.Me) || isDefaultIgnorable(r):
		case unicode.IsSpace(r):
			space = b.Len() > 0
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

func dropIgnorable(r rune) rune {
	if isDefaultIgnorable(r) {
		return -1
	}
	return r
}

// defaultIgnorable is Default_Ignorable_Code_Point (DerivedCoreProperties.txt,
// Unicode 15.1), which neither unicode nor x/text export.
var defaultIgnorable = &unicode.RangeTable{
	R16: []unicode.Range16{
		{0x00AD, 0x00AD, 1}, {0x034F, 0x034F, 1}, {0x061C, 0x061C, 1}, {0x115F, 0x1160, 1},
		{0x17B4, 0x17B5, 1}, {0x180B, 0x180F, 1}, {0x200B, 0x200F, 1}, {0x202A, 0x202E, 1},
		{0x2060, 0x206F, 1}, {0x3164, 0x3164, 1}, {0xFE00, 0xFE0F, 1}, {0xFEFF, 0xFEFF, 1},
		{0xFFA0, 0xFFA0, 1}, {0xFFF0, 0xFFF8, 1},
	},
	R32: []unicode.Range32{
		{0x1BCA0, 0x1BCA3, 1}, {0x1D173, 0x1D17A, 1}, {0xE0000, 0xE0FFF, 1},
	},
}

func isDefaultIgnorable(r rune) bool { return unicode.Is(defaultIgnorable, r) }
