package keys

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestPatternsMatchIssuedKeys: every key New issues matches its own type's
// published pattern, whole, and no other type's.
func TestPatternsMatchIssuedKeys(t *testing.T) {
	for _, kind := range []Kind{KindSecret, KindPublishable} {
		for _, sandbox := range []bool{false, true} {
			own := PatternFor(kind, sandbox)
			for i := 0; i < 500; i++ {
				tok, err := New(kind, sandbox)
				if err != nil {
					t.Fatal(err)
				}
				if got := own.FindString(tok); got != tok {
					t.Fatalf("%v sandbox=%v: pattern %s finds %q in the issued %q", kind, sandbox, own, got, tok)
				}
				// Where a scanner meets it: in code, quoted, after '=', in JSON.
				for _, ctx := range []string{`key = "%s"`, "export K=%s\n", `{"k":"%s"}`, "%s.", "(%s)"} {
					text := strings.Replace(ctx, "%s", tok, 1)
					if got := own.FindString(text); got != tok {
						t.Fatalf("pattern %s finds %q in %q", own, got, text)
					}
				}
				for _, k2 := range []Kind{KindSecret, KindPublishable} {
					for _, s2 := range []bool{false, true} {
						if (k2 != kind || s2 != sandbox) && PatternFor(k2, s2).MatchString(tok) {
							t.Fatalf("%q matches the pattern of %v sandbox=%v too", tok, k2, s2)
						}
					}
				}
			}
		}
	}
}

// TestPatternsRejectNearMisses: a wrong prefix, a wrong length, a character
// outside base62, or a key glued to other word characters is not a key.
func TestPatternsRejectNearMisses(t *testing.T) {
	tok, err := New(KindSecret, false)
	if err != nil {
		t.Fatal(err)
	}
	body := tok[prefixLen:]
	misses := map[string]string{
		"rk_ prefix":           "rk_live_" + body,
		"upper-case prefix":    "SK_LIVE_" + body,
		"mode misspelt":        "sk_prod_" + body,
		"no second underscore": "sk_live" + body,
		"one short":            tok[:len(tok)-1],
		"one long":             tok + "A",
		"hyphen inside":        tok[:20] + "-" + tok[21:],
		"underscore inside":    tok[:20] + "_" + tok[21:],
		"non-ASCII inside":     tok[:20] + "é" + tok[22:],
		"glued before":         "x" + tok,
		"glued after":          tok + "0",
		"underscore before":    "_" + tok,
		"empty":                "",
	}
	for name, s := range misses {
		for _, pat := range Patterns {
			if m := regexp.MustCompile(pat).FindString(s); m != "" {
				t.Errorf("%s: %s finds %q in %q", name, pat, m, s)
			}
		}
	}
}

// TestPatternsArePublished: the spec's description and the API guide
// (docs/api.md, where the README's secret-scanning section moved) quote each
// pattern exactly, so scanners copy what the server issues.
func TestPatternsArePublished(t *testing.T) {
	for _, file := range []string{"../../openapi.yaml", "../../docs/api.md"} {
		b, err := os.ReadFile(file) //nolint:gosec // the repository's own spec and API guide
		if err != nil {
			t.Fatal(err)
		}
		text := string(b)
		for name, pat := range Patterns {
			if !strings.Contains(text, "`"+pat+"`") {
				t.Errorf("%s does not quote the %s pattern `%s`", file, name, pat)
			}
		}
	}
}
