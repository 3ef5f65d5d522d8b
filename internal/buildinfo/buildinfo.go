// Package buildinfo describes a running binary from the build information the
// Go toolchain embeds, for the commands' version output.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Describe describes the running binary from the build information the
// Go toolchain embeds: the module's version and the VCS revision it was
// built from ("unknown" when the build recorded none: -buildvcs=false, a
// source tree without .git, or a git worktree, which go build does not
// recognise).
func Describe(prog string) string {
	bi, ok := debug.ReadBuildInfo()
	return Format(prog, bi, ok)
}

// Format is Describe for given build information (ok: whether there was any).
func Format(prog string, bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return fmt.Sprintf("%s: no build information\ngo:       %s %s/%s\n", prog, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version, module := bi.Main.Version, bi.Main.Path
	if version == "" {
		version = "(devel)"
	}
	if module == "" {
		module = "unknown"
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		if k, found := strings.CutPrefix(s.Key, "vcs."); found {
			vcs[k] = s.Value
		}
	}
	revision := vcs["revision"]
	if revision == "" {
		revision = "unknown (built without VCS information)"
	} else if vcs["modified"] == "true" {
		revision += " (with uncommitted changes)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", prog, version)
	fmt.Fprintf(&b, "module:   %s\n", module)
	fmt.Fprintf(&b, "revision: %s\n", revision)
	if t := vcs["time"]; t != "" {
		fmt.Fprintf(&b, "time:     %s\n", t)
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	fmt.Fprintf(&b, "go:       %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
