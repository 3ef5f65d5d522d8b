package namekey

import "testing"

func TestKey(t *testing.T) {
	base := Key("Managed secret key")
	for _, same := range []string{
		"Managed s\u0435cret key",   // Cyrillic e
		"Managed  secret key",       // two spaces
		"Managed secret key\u0301",  // trailing combining mark (NFC: "keý")
		"Managed secret ke\u00fd",   // precomposed
		"Managed secret key\u20dd",  // enclosing mark
		"Managed secret key\u3164",  // Hangul filler (a letter that renders blank)
		"Managed \u034fsecret key",  // combining grapheme joiner
		"Managed secret key\ufe0f",  // variation selector
		"\uff2danaged secret key",   // fullwidth M
		"Managed secret key \u0301", // a mark on a trailing space
	} {
		if got := Key(same); got != base {
			t.Errorf("Key(%+q) = %+q, want %+q (Key of Managed secret key)", same, got, base)
		}
	}
	for _, other := range []string{"Managed secret keys", "managed secret key", "Managed publishable key", "Managedsecret key"} {
		if Key(other) == base {
			t.Errorf("Key(%q) = Key(Managed secret key): distinct names collide", other)
		}
	}
	for _, empty := range []string{"\u0301", "\u3164", "\ufe0f\u0301"} {
		if got := Key(empty); got != "" {
			t.Errorf("Key(%+q) = %+q, want empty", empty, got)
		}
	}
}
