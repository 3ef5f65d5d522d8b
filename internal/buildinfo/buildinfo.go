// Package buildinfo describes a running binary: the version and revision
// `make build` stamps into it (-ldflags -X), else what the Go toolchain
// embeds. The commands' version output, the start log line and the
// hsrcpay_build_info metric all read it here, so they always agree.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
)

// Stamped by `make build`:
//
//	-X github.com/hsrcpay/apikeys/internal/buildinfo.version=$(git describe --tags --always --dirty)
//	-X github.com/hsrcpay/apikeys/internal/buildinfo.revision=$(git rev-parse HEAD)
//
// (the version is dev+<commit> when no tag precedes HEAD). Unset in a plain
// `go build`, `go run` or `go test`, which fall back on the toolchain's
// build information. The toolchain's cannot replace them: it records no
// revision when the source is a git worktree, and "(devel)" as the version
// of any build that is not `go install module@version`.
var version, revision string

// Info is what the binary knows about its build.
type Info struct {
	Version   string // the stamped version; else the module's; else dev+<revision>; else "(devel)"
	Revision  string // the VCS commit; "unknown" when neither the stamp nor the toolchain recorded one
	Modified  bool   // the toolchain saw uncommitted changes (a stamped version says so itself: -dirty)
	Time      string // the commit's time, when the toolchain recorded it
	Module    string
	GoVersion string // the toolchain that built it
}

// Read returns the running binary's build information.
func Read() Info {
	bi, ok := debug.ReadBuildInfo()
	return read(bi, ok, version, revision)
}

// Version is Read().Version: the one string that names this build.
func Version() string { return Read().Version }

func read(bi *debug.BuildInfo, ok bool, stampedVersion, stampedRevision string) Info {
	in := Info{Module: "unknown", GoVersion: runtime.Version()}
	var vcs map[string]string
	if ok && bi != nil {
		if bi.Main.Path != "" {
			in.Module = bi.Main.Path
		}
		if bi.GoVersion != "" {
			in.GoVersion = bi.GoVersion
		}
		in.Version = bi.Main.Version
		vcs = map[string]string{}
		for _, s := range bi.Settings {
			if k, found := strings.CutPrefix(s.Key, "vcs."); found {
				vcs[k] = s.Value
			}
		}
		in.Revision, in.Time, in.Modified = vcs["revision"], vcs["time"], vcs["modified"] == "true"
	}
	if stampedRevision != "" {
		in.Revision, in.Modified, in.Time = stampedRevision, false, ""
	}
	switch {
	case stampedVersion != "":
		in.Version = stampedVersion
	case in.Version != "" && in.Version != "(devel)":
		// go install module@version
	case in.Revision != "":
		in.Version = "dev+" + shortRevision(in.Revision)
		if in.Modified {
			in.Version += "-dirty"
		}
	default:
		in.Version = "(devel)"
	}
	if in.Revision == "" {
		in.Revision = "unknown"
	}
	return in
}

func shortRevision(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}

// Describe describes the running binary for its version command: the
// version, the module and the VCS revision it was built from ("unknown"
// when neither `make build` nor the toolchain recorded one: -buildvcs=false,
// a source tree without .git, or a git worktree, which go build does not
// recognise).
func Describe(prog string) string {
	bi, ok := debug.ReadBuildInfo()
	if !ok && version == "" {
		return Format(prog, nil, false)
	}
	return describe(prog, read(bi, ok, version, revision))
}

// Format is Describe for given build information (ok: whether there was
// any), without the stamp.
func Format(prog string, bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return fmt.Sprintf("%s: no build information\ngo:       %s %s/%s\n", prog, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	in := read(bi, ok, "", "")
	if bi.Main.Version == "" || bi.Main.Version == "(devel)" {
		in.Version = "(devel)" // Format shows what the toolchain recorded, as it recorded it
	}
	return describe(prog, in)
}

func describe(prog string, in Info) string {
	revision := in.Revision
	switch {
	case revision == "unknown":
		revision = "unknown (built without VCS information)"
	case in.Modified:
		revision += " (with uncommitted changes)"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", prog, in.Version)
	fmt.Fprintf(&b, "module:   %s\n", in.Module)
	fmt.Fprintf(&b, "revision: %s\n", revision)
	if in.Time != "" {
		fmt.Fprintf(&b, "time:     %s\n", in.Time)
	}
	fmt.Fprintf(&b, "go:       %s %s/%s\n", in.GoVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
