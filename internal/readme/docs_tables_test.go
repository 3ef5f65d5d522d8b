package readme

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/hsrcpay/apikeys/internal/config"
)

var update = flag.Bool("update", false, "rewrite the generated blocks of docs/ (the settings table) from their sources")

// between returns the text between two marker comments of a page, and the
// page split around it.
func between(t *testing.T, page, begin, end string) (before, inside, after string) {
	t.Helper()
	i, j := strings.Index(page, begin), strings.Index(page, end)
	if end == "\x00" { // to the end of the page
		j = len(page)
	}
	if i < 0 || j < i {
		t.Fatalf("the page lacks the markers %s … %s", begin, end)
	}
	i += len(begin)
	return page[:i], page[i:j], page[j:]
}

// settingsTable renders config.Variables, the list the server reads and
// `hsrcpay-server --help` prints, as docs/configuration.md shows it.
func settingsTable() string {
	var b strings.Builder
	b.WriteString("\n| variable | flag | default | meaning |\n|---|---|---|---|\n")
	cell := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, v := range config.Variables {
		def := "—"
		if v.Default != "" {
			def = "`" + v.Default + "`"
		}
		flagName := "--" + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v.Name, "HSRCPAY_")), "_", "-")
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s |\n", v.Name, flagName, def, cell(v.Help))
	}
	return b.String()
}

// TestSettingsTable holds docs/configuration.md's settings table equal to
// config.Variables; `go test ./internal/readme -run TestSettingsTable -update`
// rewrites it.
func TestSettingsTable(t *testing.T) {
	path := filepath.Join(repoRoot(t), "docs", "configuration.md")
	raw, err := os.ReadFile(path) //nolint:gosec // this repository's own documentation
	if err != nil {
		t.Fatal(err)
	}
	before, inside, after := between(t, string(raw), "<!-- settings:begin (generated from internal/config.Variables by go test ./internal/readme -update) -->", "<!-- settings:end -->")
	want := settingsTable()
	if inside == want {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(before+want+after), 0o644); err != nil { //nolint:gosec // a documentation page, world-readable as the others
			t.Fatal(err)
		}
		return
	}
	t.Errorf("docs/configuration.md's settings table differs from internal/config.Variables: run go test ./internal/readme -run TestSettingsTable -update\nwant:%s", want)
}

// TestErrorCodeTable holds docs/api.md's error-code table to the spec: every
// code of the ErrorCode enum has one row, with its status (the code's first
// three digits, and the status the spec's own table in its description
// gives) and the constant the Go client exports (x-enum-varnames), and the
// table has no code the enum lacks.
func TestErrorCodeTable(t *testing.T) {
	root := repoRoot(t)
	doc, err := openapi3.NewLoader().LoadFromFile(filepath.Join(root, "openapi.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	schema := doc.Components.Schemas["ErrorCode"]
	if schema == nil || schema.Value == nil {
		t.Fatal("openapi.yaml has no components.schemas.ErrorCode")
	}
	names, _ := schema.Value.Extensions["x-enum-varnames"].([]any)
	if len(names) != len(schema.Value.Enum) {
		t.Fatalf("ErrorCode: %d codes, %d x-enum-varnames", len(schema.Value.Enum), len(names))
	}
	// The spec's description tabulates each code's status too.
	specStatus := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^\s*\| (\d{5}) \| (\d{3}) \|`).FindAllStringSubmatch(doc.Info.Description, -1) {
		specStatus[m[1]] = m[2]
	}

	raw, err := os.ReadFile(filepath.Join(root, "docs", "api.md")) //nolint:gosec // this repository's own documentation
	if err != nil {
		t.Fatal(err)
	}
	_, table, _ := between(t, string(raw), "<!-- error-codes:begin -->", "<!-- error-codes:end -->")
	type row struct{ status, constant string }
	rows := map[string]row{}
	rowRE := regexp.MustCompile("^\\| (\\d{5}) \\| (\\d{3}) \\| `client\\.(\\w+)` \\| .+ \\|$")
	for _, line := range strings.Split(strings.TrimSpace(table), "\n")[2:] {
		m := rowRE.FindStringSubmatch(line)
		if m == nil {
			t.Errorf("docs/api.md: an error-code row not of the form | code | status | `client.Name` | meaning |: %s", line)
			continue
		}
		if _, dup := rows[m[1]]; dup {
			t.Errorf("docs/api.md lists %s twice", m[1])
		}
		rows[m[1]] = row{m[2], m[3]}
	}
	inEnum := map[string]bool{}
	for i, v := range schema.Value.Enum {
		code := strconv.Itoa(int(v.(float64)))
		inEnum[code] = true
		r, ok := rows[code]
		switch {
		case !ok:
			t.Errorf("docs/api.md's error table lacks %s (%v)", code, names[i])
			continue
		case r.status != code[:3]:
			t.Errorf("docs/api.md: %s has status %s, its first three digits say %s", code, r.status, code[:3])
		case specStatus[code] != "" && r.status != specStatus[code]:
			t.Errorf("docs/api.md: %s has status %s, the spec's table %s", code, r.status, specStatus[code])
		}
		if r.constant != names[i] {
			t.Errorf("docs/api.md: %s is client.%s in the table, %v in the spec", code, r.constant, names[i])
		}
		if specStatus[code] == "" {
			t.Errorf("the spec's description has no row for %s: its own table is incomplete", code)
		}
	}
	for code := range rows {
		if !inEnum[code] {
			t.Errorf("docs/api.md lists %s, which the spec's ErrorCode enum lacks", code)
		}
	}
}

// prose returns a page's lines outside fenced blocks.
func prose(page string) []string {
	var out []string
	fenced := false
	for _, line := range strings.Split(page, "\n") {
		if strings.HasPrefix(line, "```") {
			fenced = !fenced
			continue
		}
		if !fenced {
			out = append(out, line)
		}
	}
	return out
}

// anchors returns the GitHub anchors of a page's headings.
func anchors(page string) map[string]bool {
	out := map[string]bool{}
	drop := regexp.MustCompile(`[^\p{L}\p{N} _-]`)
	for _, line := range prose(page) {
		if !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		slug := strings.ReplaceAll(drop.ReplaceAllString(strings.ToLower(h), ""), " ", "-")
		for n, s := 0, slug; ; n++ { // GitHub numbers a repeated heading's anchor
			if !out[s] {
				out[s] = true
				break
			}
			s = fmt.Sprintf("%s-%d", slug, n+1)
		}
	}
	return out
}

// TestDocumentationLinks: every relative link between the README and the
// pages of docs/ names a file that exists and, with #anchor, a heading of it.
func TestDocumentationLinks(t *testing.T) {
	root := repoRoot(t)
	linkRE := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, page := range pages(t, root) {
		raw, err := os.ReadFile(filepath.Join(root, page)) //nolint:gosec // this repository's own documentation
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range prose(string(raw)) {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				file, anchor, _ := strings.Cut(target, "#")
				path := filepath.Join(root, page)
				if file != "" {
					path = filepath.Join(filepath.Dir(path), file)
				}
				body, err := os.ReadFile(path) //nolint:gosec // a file of this repository a page links to
				if err != nil {
					if _, statErr := os.Stat(path); statErr == nil { // a directory
						continue
					}
					t.Errorf("%s links to %s: no such file", page, target)
					continue
				}
				if anchor != "" && strings.HasSuffix(path, ".md") && !anchors(string(body))[anchor] {
					t.Errorf("%s links to %s: no such heading in %s", page, target, file)
				}
			}
		}
	}
}

// TestArchitectureLayout: docs/architecture.md's layout names every
// directory holding Go code.
func TestArchitectureLayout(t *testing.T) {
	root := repoRoot(t)
	raw, err := os.ReadFile(filepath.Join(root, "docs", "architecture.md")) //nolint:gosec // this repository's own documentation
	if err != nil {
		t.Fatal(err)
	}
	_, layout, _ := between(t, string(raw), "## Layout", "\x00")
	dirs := map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() && path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "node_modules" || name == "bin" || name == "data") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(name, ".go") {
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			if rel != "." {
				dirs[filepath.ToSlash(rel)+"/"] = true
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for dir := range dirs {
		if !strings.Contains(layout, "| `"+dir+"` |") {
			t.Errorf("docs/architecture.md's layout has no line for %s", dir)
		}
	}
}
