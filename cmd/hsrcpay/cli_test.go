package main

import (
	"runtime/debug"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/buildinfo"
)

// TestHelpListsCommandsAndTypedFlags: help, --help and -h exit 0 and list
// the commands; each command's help lists its flags with their types (and
// defaults where there is one) and the connection flags.
func TestHelpListsCommandsAndTypedFlags(t *testing.T) {
	for _, args := range [][]string{{"help"}, {"--help"}, {"-h"}} {
		code, out, errOut := cli(t, nil, args...)
		wantCode(t, code, 0, out, errOut)
		contains(t, strings.Join(args, " "), out,
			"hsrcpay keys create", "hsrcpay keys list", "hsrcpay audit verify", // every command
			"hsrcpay keys ", "hsrcpay audit ", "hsrcpay version", "hsrcpay completion", "hsrcpay help", // the root's own
			"--api-key string", "--api-url string", "HSRCPAY_API_KEY", "HSRCPAY_API_URL", "-v, --version", "Exit codes:")
	}
	for args, want := range map[string][]string{
		"keys list --help":       {"--limit int", "--managed true|false", "--deleted ", "--status string", "--json ", "--api-key string", "Connection flags:"},
		"keys regenerate --help": {"--grace-period duration", "--json ", "--idempotency-key string"},
		"keys verify --help":     {"--permission RESOURCE:ACTION", "--json ", "account:api:key:verify", "KEY \"-\" reads the key"},
		"keys create -h":         {"--permission RESOURCE:ACTION", "--metadata KEY=VALUE", "--account string", "--expires-at string", "--idempotency-key string"},
		"help keys update":       {"--metadata KEY=VALUE", "--clear-metadata ", "--status string"},
		"audit list --help":      {"--limit int", "--action string", "--key-id string"},
		"keys help":              {"hsrcpay keys create", "hsrcpay keys delete"},
		"audit help":             {"hsrcpay audit list", "hsrcpay audit verify"},
		"completion --help":      {"bash", "zsh", "fish", "powershell"},
	} {
		code, out, errOut := cli(t, nil, strings.Fields(args)...)
		wantCode(t, code, 0, out, errOut)
		if errOut != "" {
			t.Errorf("%s: stderr %q", args, errOut)
		}
		contains(t, args, out, want...)
	}
}

// TestVersion: version, --version and -v print the module and the VCS
// revision from the build information.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}, {"-v"}} {
		code, out, errOut := cli(t, nil, args...)
		wantCode(t, code, 0, out, errOut)
		contains(t, strings.Join(args, " "), out, "hsrcpay ", "module:", "revision:", "go:")
	}
	bi := &debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Path: "github.com/hsrcpay/apikeys", Version: "v1.4.0"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "2d3ab92c27f0"}, {Key: "vcs.modified", Value: "false"}}}
	got := buildinfo.Format("hsrcpay", bi, true)
	contains(t, "stamped build", got, "hsrcpay v1.4.0\n", "module:   github.com/hsrcpay/apikeys\n", "revision: 2d3ab92c27f0\n")
	if strings.Contains(got, "uncommitted") {
		t.Errorf("a clean build shows uncommitted changes:\n%s", got)
	}
}

// TestCompletion: cobra's completion scripts, and completion of commands and
// of flag values.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, errOut := cli(t, nil, "completion", shell)
		wantCode(t, code, 0, out, errOut)
		contains(t, "completion "+shell, out, "hsrcpay")
	}
	for args, want := range map[string][]string{
		"__complete ":                      {"keys", "audit", "version"},
		"__complete keys ":                 {"create", "regenerate", "list", "get", "update", "disable", "enable", "delete", "verify"},
		"__complete keys list --status ":   {"active", "inactive", "expired"},
		"__complete keys list --managed ":  {"true", "false"},
		"__complete keys update --status ": {"active", "inactive"},
		"__complete audit list --action ":  {"create", "regenerate", "bootstrap"},
		"__complete help keys ":            {"create", "list"},
	} {
		code, out, errOut := cli(t, nil, strings.Split(args, " ")...) // the trailing "" is the word being completed
		wantCode(t, code, 0, out, errOut)
		contains(t, args, out, want...)
	}
}

// TestParserErrors: what the command-line parser refuses exits 2 (usage),
// with the command and a pointer to its help on stderr.
func TestParserErrors(t *testing.T) {
	for args, want := range map[string][]string{
		"keys list --limit ten --account a":   {`invalid argument "ten"`, "--limit", "hsrcpay keys list --help"},
		"keys regenerate --grace-period 1x k": {"--grace-period", "hsrcpay keys regenerate --help"},
		"keys get --bogus k":                  {"unknown flag: --bogus"},
		"keys":                                {"hsrcpay keys create", "Exit codes:"},
		"keys creat":                          {`unknown command "creat"`, "did you mean create?"},
		"version extra":                       {`unknown command "extra"`},
		"help keys nothing":                   {`no help for "keys nothing"`},
	} {
		code, out, errOut := cli(t, map[string]string{"HSRCPAY_API_URL": "http://127.0.0.1:1/v1", "HSRCPAY_API_KEY": "sk_test_x"}, strings.Fields(args)...)
		wantCode(t, code, exitUsage, out, errOut)
		if out != "" {
			t.Errorf("%s: stdout %q", args, out)
		}
		contains(t, args, errOut, want...)
	}
}
