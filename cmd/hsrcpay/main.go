// Command hsrcpay is the command-line client of the HSRCPAY API-key service,
// built on the Go client (package client).
//
//	export HSRCPAY_API_KEY=sk_test_…
//	hsrcpay keys create --account acct_demo --name "Checkout backend" \
//	    --permission payment:read --permission payment:create
//	hsrcpay keys regenerate key_…
//	hsrcpay keys list --account acct_demo --status active
//	hsrcpay keys disable key_…
//	hsrcpay audit verify --account acct_demo
//
// Run `hsrcpay help` for the commands, flags and exit codes.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

// Exit codes, by kind of failure (documented in the help texts).
const (
	exitOK       = 0
	exitError    = 1 // the API refused for another reason (400, 409, 422, 429, 5xx), the server was unreachable, or the audit chain is broken
	exitUsage    = 2 // bad command line or missing token; nothing was sent
	exitAuth     = 3 // 401 or 403
	exitNotFound = 4 // 404
)

const defaultAPIURL = "http://127.0.0.1:8080/v1"

const exitCodesHelp = `Exit codes:
  0  success
  1  the API refused the request for another reason (400, 409, 422, 429, 5xx),
     the server could not be reached, or (audit verify) the audit chain is broken
  2  usage: bad flags or arguments, or no API key; nothing was sent
  3  authentication or authorization: 401 (bad, expired or revoked token) or 403
  4  not found: 404 (no such key or account, or not visible to this token)
`

const connectionHelp = `Connection (flags or environment):
  --api-key TOKEN   secret key or JWT; default $HSRCPAY_API_KEY (prefer the
                    variable: arguments are visible to other local users)
  --api-url URL     API base URL; default $HSRCPAY_API_URL, else ` + defaultAPIURL + `
`

const mainHelp = `hsrcpay manages HSRCPAY API keys.

Usage:
  hsrcpay keys create --account ID --name NAME [--permission RESOURCE:ACTION ...]
                      [--expires-at RFC3339] [--metadata KEY=VALUE ...] [--json]
  hsrcpay keys regenerate [--grace-period DURATION] [--json] KEY_ID
  hsrcpay keys list --account ID [--status STATUS] [--type TYPE] [--managed true|false]
                    [--created-by ID] [--deleted] [--limit N] [--json]
  hsrcpay keys get [--json] KEY_ID
  hsrcpay keys update [--name NAME] [--metadata KEY=VALUE ... | --clear-metadata]
                      [--status active|inactive] [--expires-at RFC3339] [--json] KEY_ID
  hsrcpay keys disable [--json] KEY_ID
  hsrcpay keys enable [--json] KEY_ID
  hsrcpay keys delete [--json] KEY_ID
  hsrcpay audit list --account ID [--key-id KEY_ID] [--action ACTION] [--limit N] [--json]
  hsrcpay audit verify --account ID [--json]
  hsrcpay help [keys [COMMAND] | audit [COMMAND]]

Run 'hsrcpay keys COMMAND --help' or 'hsrcpay audit COMMAND --help' for details.

` + connectionHelp + `
Output: a summary for people by default; --json prints the API's object as
JSON (for a list, one JSON array holding every page). A new secret is printed
once and can never be retrieved again. Errors go to stderr with the API's
message, error code and request id.

` + exitCodesHelp

const keysHelp = `Usage:
  hsrcpay keys create      create a custom secret key on an account
  hsrcpay keys regenerate  rotate the secret of a managed key
  hsrcpay keys list        list an account's keys (every page)
  hsrcpay keys get         show one key (never its secret)
  hsrcpay keys update      change a key's name, metadata, status or expiry
  hsrcpay keys disable     switch a key off at once (status INACTIVE)
  hsrcpay keys enable      switch a disabled key back on (status ACTIVE)
  hsrcpay keys delete      revoke a custom key for good

Run 'hsrcpay keys COMMAND --help' for its flags.

` + exitCodesHelp

const auditHelp = `Usage:
  hsrcpay audit list    list an account's audit events, newest first
  hsrcpay audit verify  check the account's audit hash chain

Run 'hsrcpay audit COMMAND --help' for its flags.

` + exitCodesHelp

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// run is the whole command: args without the program name, getenv for the
// environment, and the output streams. It returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, mainHelp)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "help", "-h", "-help", "--help":
		return help(rest, stdout, stderr)
	case "keys":
		return keys(rest, getenv, stdout, stderr)
	case "audit":
		return auditCmd(rest, getenv, stdout, stderr)
	default:
		return usageError(stderr, "hsrcpay", fmt.Sprintf("unknown command %q", cmd))
	}
}

func help(topic []string, stdout, stderr io.Writer) int {
	switch strings.Join(topic, " ") {
	case "":
		fmt.Fprint(stdout, mainHelp)
	case "keys":
		fmt.Fprint(stdout, keysHelp)
	case "keys create":
		fmt.Fprint(stdout, createHelp)
	case "keys regenerate":
		fmt.Fprint(stdout, regenerateHelp)
	case "keys list":
		fmt.Fprint(stdout, listHelp)
	case "keys get":
		fmt.Fprint(stdout, getHelp)
	case "keys update":
		fmt.Fprint(stdout, updateHelp)
	case "keys disable", "keys enable":
		fmt.Fprint(stdout, disableHelp)
	case "keys delete":
		fmt.Fprint(stdout, deleteHelp)
	case "audit":
		fmt.Fprint(stdout, auditHelp)
	case "audit list":
		fmt.Fprint(stdout, auditListHelp)
	case "audit verify":
		fmt.Fprint(stdout, auditVerifyHelp)
	default:
		return usageError(stderr, "hsrcpay help", fmt.Sprintf("no help for %q", strings.Join(topic, " ")))
	}
	return exitOK
}

func keys(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, keysHelp)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, keysHelp)
		return exitOK
	case "create":
		return createCmd(rest, getenv, stdout, stderr)
	case "regenerate":
		return regenerateCmd(rest, getenv, stdout, stderr)
	case "list":
		return listCmd(rest, getenv, stdout, stderr)
	case "get":
		return getCmd(rest, getenv, stdout, stderr)
	case "update":
		return updateCmd(rest, getenv, stdout, stderr)
	case "disable":
		return switchCmd("disable", rest, getenv, stdout, stderr)
	case "enable":
		return switchCmd("enable", rest, getenv, stdout, stderr)
	case "delete":
		return deleteCmd(rest, getenv, stdout, stderr)
	default:
		return usageError(stderr, "hsrcpay keys", fmt.Sprintf("unknown command %q", cmd))
	}
}

// usageError reports a bad command line and returns exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	fmt.Fprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd, msg, cmd)
	return exitUsage
}

// parseInterspersed parses flags that may come before, between or after the
// positional arguments (`regenerate key_x --json` as well as
// `regenerate --json key_x`); "--" ends the flags. It returns the positional
// arguments, or flag.ErrHelp for -h/--help, or the parse error (which the
// flag set has already printed).
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		// fs.Parse stops at the first non-flag or after "--".
		consumed := len(args) - len(rest)
		if consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// newFlagSet makes a flag set that reports parse errors to stderr and
// leaves --help to parseOrExit.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {}
	return fs
}

// parseOrExit parses args; ok is false when the command must stop with code:
// after --help (printed to stdout, 0) or a bad flag (stderr, 2).
func parseOrExit(fs *flag.FlagSet, args []string, helpText string, stdout, stderr io.Writer) (pos []string, code int, ok bool) {
	pos, err := parseInterspersed(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fmt.Fprint(stdout, helpText)
		return nil, exitOK, false
	case err != nil:
		// The flag set has printed the error itself.
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", fs.Name())
		return nil, exitUsage, false
	}
	return pos, 0, true
}
