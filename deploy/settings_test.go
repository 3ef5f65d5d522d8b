// Package deploy holds the tests of what deploy/ ships: the image
// (Containerfile, built by `make image`), the Helm chart and the compose file.
// They read what those files hand the server and check it against what the
// server reads (internal/config), so that a renamed or invented variable
// fails here rather than in a cluster.
package deploy

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/hsrcpay/apikeys/internal/config"
)

// serverVariables is every HSRCPAY_* name the server reads.
func serverVariables() map[string]bool {
	known := map[string]bool{}
	for _, v := range config.Variables {
		known[v.Name] = true
	}
	return known
}

// repoRoot is the module's root (this package is deploy/).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("no caller information")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	return root
}

// required says whether a test of a tool that is missing must fail rather
// than skip: CI sets the variable (HSRCPAY_REQUIRE_HELM, HSRCPAY_REQUIRE_PODMAN).
func required(variable string) bool { return os.Getenv(variable) == "1" }
