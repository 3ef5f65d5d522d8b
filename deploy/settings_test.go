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

// pendingVariables are settings the deployment files already use and the
// server gains in a change under way elsewhere, with that change. Delete an
// entry once config.Variables lists it (TestPendingVariablesStillPending says when).
var pendingVariables = map[string]string{
	"HSRCPAY_MIGRATE": "issue 20: `hsrcpay-server migrate up` and HSRCPAY_MIGRATE=auto|off (branch ops-cmd)",
}

// serverVariables is every HSRCPAY_* name the server reads, and the pending ones.
func serverVariables() map[string]bool {
	known := map[string]bool{}
	for _, v := range config.Variables {
		known[v.Name] = true
	}
	for name := range pendingVariables {
		known[name] = true
	}
	return known
}

func TestPendingVariablesStillPending(t *testing.T) {
	for _, v := range config.Variables {
		if why, ok := pendingVariables[v.Name]; ok {
			t.Errorf("%s is in config.Variables now (%s): delete it from pendingVariables", v.Name, why)
		}
	}
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
