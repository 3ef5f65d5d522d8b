// Command breakingfilter judges oasdiff's breaking changes (JSON on stdin,
// from `oasdiff breaking --format json`) with one exception to oasdiff's
// rules: new values of the error envelope's `error.code`. The spec declares
// those codes an open set (a client handles an unknown code by its first
// three digits, the HTTP status), so adding a code is additive. oasdiff has
// no way to say so for one property: it only exempts x-extensible-enum, which
// would drop the enum that generates the Go constants and lets response
// validation refuse undocumented codes. Any other ERR-level change fails, as
// before; accepted ones are printed for the record.
package main

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

type change struct {
	ID        string `json:"id"`
	Text      string `json:"text"`
	Level     int    `json:"level"` // oasdiff: 1 INFO, 2 WARN, 3 ERR
	Operation string `json:"operation"`
	Path      string `json:"path"`
}

// openErrorCodes reports a new value of the error envelope's code.
func openErrorCodes(c change) bool {
	return c.ID == "response-property-enum-value-added" && strings.Contains(c.Text, "to the `error/code` response property")
}

func main() {
	var changes []change
	if err := json.NewDecoder(os.Stdin).Decode(&changes); err != nil {
		fmt.Fprintf(os.Stderr, "breakingfilter: reading oasdiff's JSON: %v\n", err)
		os.Exit(2)
	}
	codes := map[string]bool{}
	failed := 0
	for _, c := range changes {
		switch {
		case c.Level < 3:
			fmt.Printf("warning\t[%s] %s %s %s\n", c.ID, c.Operation, c.Path, c.Text)
		case openErrorCodes(c):
			if v, _, ok := strings.Cut(strings.TrimPrefix(c.Text, "added the new `"), "`"); ok {
				codes[strings.TrimSuffix(v, ".00")] = true
			}
		default:
			failed++
			fmt.Printf("error\t[%s] %s %s %s\n", c.ID, c.Operation, c.Path, c.Text)
		}
	}
	if len(codes) > 0 {
		list := make([]string, 0, len(codes))
		for c := range codes {
			list = append(list, c)
		}
		fmt.Printf("additive: %d new error code(s) (error.code is an open set): %s\n", len(list), strings.Join(sortStrings(list), ", "))
	}
	if failed > 0 {
		fmt.Printf("%d breaking change(s)\n", failed)
		os.Exit(1)
	}
}

func sortStrings(s []string) []string {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
	return s
}
