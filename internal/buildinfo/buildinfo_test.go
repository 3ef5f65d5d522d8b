package buildinfo

import (
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// TestVersionSources: the stamp (make build) wins over the toolchain's
// build information; without it, a module version, else dev+<revision>
// (-dirty with uncommitted changes), else "(devel)".
func TestVersionSources(t *testing.T) {
	toolchain := func(version string, settings ...debug.BuildSetting) *debug.BuildInfo {
		return &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/hsrcpay/apikeys", Version: version}, Settings: settings}
	}
	rev := debug.BuildSetting{Key: "vcs.revision", Value: "2d3ab92c27f0aa11bb22cc33dd44ee55ff667788"}
	dirty := debug.BuildSetting{Key: "vcs.modified", Value: "true"}
	for _, tc := range []struct {
		what                      string
		bi                        *debug.BuildInfo
		ok                        bool
		stampV, stampR            string
		wantVersion, wantRevision string
		wantModified              bool
	}{
		{"stamped, tagged", toolchain("(devel)"), true, "v1.2.0-3-g0c6aba2-dirty", "0c6aba2d", "v1.2.0-3-g0c6aba2-dirty", "0c6aba2d", false},
		{"stamped wins over the toolchain's revision", toolchain("(devel)", rev, dirty), true, "dev+0c6aba2", "0c6aba2d", "dev+0c6aba2", "0c6aba2d", false},
		{"stamped without build information", nil, false, "v1.0.0", "abc", "v1.0.0", "abc", false},
		{"go install module@version", toolchain("v1.4.0", rev), true, "", "", "v1.4.0", rev.Value, false},
		{"go build in a clone", toolchain("(devel)", rev), true, "", "", "dev+2d3ab92c27f0", rev.Value, false},
		{"go build with changes", toolchain("(devel)", rev, dirty), true, "", "", "dev+2d3ab92c27f0-dirty", rev.Value, true},
		{"go build in a worktree", toolchain("(devel)"), true, "", "", "(devel)", "unknown", false},
		{"nothing at all", nil, false, "", "", "(devel)", "unknown", false},
	} {
		in := read(tc.bi, tc.ok, tc.stampV, tc.stampR)
		if in.Version != tc.wantVersion || in.Revision != tc.wantRevision || in.Modified != tc.wantModified {
			t.Errorf("%s: version %q revision %q modified %v; want %q %q %v", tc.what, in.Version, in.Revision, in.Modified, tc.wantVersion, tc.wantRevision, tc.wantModified)
		}
		if in.GoVersion == "" {
			t.Errorf("%s: no Go version", tc.what)
		}
	}
	if in := read(nil, false, "", ""); in.GoVersion != runtime.Version() {
		t.Errorf("Go version without build information: %q, want the runtime's %q", in.GoVersion, runtime.Version())
	}
}

// TestVersionDescribe: the version command's text shows the stamp.
func TestVersionDescribe(t *testing.T) {
	got := describe("hsrcpay-server", read(&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/hsrcpay/apikeys", Version: "(devel)"}}, true, "dev+0c6aba2", "0c6aba2d"))
	for _, want := range []string{"hsrcpay-server dev+0c6aba2\n", "module:   github.com/hsrcpay/apikeys\n", "revision: 0c6aba2d\n", "go:       go1.26.0 "} {
		if !strings.Contains(got, want) {
			t.Errorf("lacks %q:\n%s", want, got)
		}
	}
	// This test binary is not stamped: Version falls back, never empty.
	if v := Version(); v == "" {
		t.Error("Version() is empty")
	}
}
