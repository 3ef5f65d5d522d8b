// Command hsrcpay is the command-line client of the HSRCPAY API-key service,
// built on the Go client (package client).
//
//	export HSRCPAY_API_KEY=sk_test_…
//	hsrcpay keys create --account acct_demo --name "Checkout backend" \
//	    --permission payment:read --permission payment:create
//	hsrcpay keys regenerate key_…
//	hsrcpay keys list --account acct_demo --status active
//	hsrcpay keys disable key_…
//	hsrcpay keys verify --permission payment:create -   # the key on stdin
//	hsrcpay audit verify --account acct_demo
//
// Run `hsrcpay help` for the commands, flags and exit codes.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/spf13/cobra"
)

// Exit codes, by kind of failure (documented in the help texts).
const (
	exitOK       = 0
	exitError    = 1 // the API refused for another reason (400, 409, 422, 429, 5xx), the server was unreachable, the audit chain is broken, or the key verified does not work
	exitUsage    = 2 // bad command line or missing token; nothing was sent
	exitAuth     = 3 // 401 or 403
	exitNotFound = 4 // 404
)

const defaultAPIURL = "http://127.0.0.1:8080/v1"

const exitCodesHelp = `Exit codes:
  0  success
  1  the API refused the request for another reason (400, 409, 422, 429, 5xx),
     the server could not be reached, (audit verify) the audit chain is broken,
     or (keys verify) the verdict is not VALID: the key does not work
  2  usage: bad flags or arguments, or no API key; nothing was sent
  3  authentication or authorization: 401 (bad, expired or revoked token) or 403
  4  not found: 404 (no such key or account, or not visible to this token)
`

const rootHelp = `hsrcpay manages HSRCPAY API keys.

The token comes from --api-key or $HSRCPAY_API_KEY, the API's base URL from
--api-url or $HSRCPAY_API_URL (default ` + defaultAPIURL + `), the time limit
from --timeout or $HSRCPAY_TIMEOUT. Every command takes these connection flags,
before or after its name.

Output: a summary for people by default; --json prints the API's object as
JSON (for a list, one JSON array holding every page). A new secret is printed
once and can never be retrieved again. Errors go to stderr with the API's
message, error code and request id.`

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// app is what every command needs: the environment, the output streams and
// the connection flags (--api-key, --api-url, --timeout), which every command
// takes.
type app struct {
	getenv         func(string) string
	stdout, stderr io.Writer
	conn           conn
}

// exitCode ends run with that code; the command has printed why.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// exit turns a command's exit code into RunE's error.
func exit(code int) error {
	if code == exitOK {
		return nil
	}
	return exitCode(code)
}

// run is the whole command: args without the program name, getenv for the
// environment, and the output streams. It returns the exit code.
func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return (&app{getenv: getenv, stdout: stdout, stderr: stderr}).run(args)
}

// run is the whole command for a.
func (a *app) run(args []string) int {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root := a.rootCmd()
	root.SetArgs(args)
	defer a.conn.stop()
	cmd, err := root.ExecuteC()
	var code exitCode
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &code):
		return int(code)
	}
	// The parser's own errors: an unknown command or flag, a flag value of
	// the wrong type, a flag without its value.
	if cmd == nil {
		cmd = root
	}
	// A group's flags are parsed before its RunE sees a command it lacks:
	// "keys lst --account a" would only say "unknown flag: --account". The
	// mistyped command is the one to report (the parser got that far).
	if cmd.Annotations["group"] != "" && cmd.Flags().NArg() > 0 {
		return usageError(a.stderr, cmd.CommandPath(), unknownCommand(cmd, cmd.Flags().Arg(0)))
	}
	return usageError(a.stderr, cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"))
}

// suggestDistance is how far (Levenshtein) a mistyped command may be from
// the one suggested: "lsit" → list. Cobra's default for the root, which
// sub-commands do not inherit (theirs is 0: only prefixes were suggested).
const suggestDistance = 2

// suggestions are c's commands nearest to name: those a prefix or explicit
// suggestion matches, and those at the smallest distance up to c's
// SuggestionsMinimumDistance ("lst" → list, not get, which is 2 away too).
func suggestions(c *cobra.Command, name string) []string {
	most := c.SuggestionsMinimumDistance
	defer func() { c.SuggestionsMinimumDistance = most }()
	for d := 0; d <= most; d++ {
		c.SuggestionsMinimumDistance = d
		if s := c.SuggestionsFor(name); len(s) > 0 {
			return s
		}
	}
	return nil
}

// didYouMean is cobra's wording of the suggestions for name, or "".
func didYouMean(c *cobra.Command, name string) string {
	s := suggestions(c, name)
	if len(s) == 0 {
		return ""
	}
	return "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
}

// unknownCommand is the message for a command name that c lacks, with the
// near misses, worded as cobra words it for the root's commands.
func unknownCommand(c *cobra.Command, name string) string {
	return fmt.Sprintf("unknown command %q for %q", name, c.CommandPath()) + didYouMean(c, name)
}

// group marks a command that only holds commands (no usage line of its own).
var group = map[string]string{"group": "true"}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "hsrcpay",
		Short:         "Manage HSRCPAY API keys",
		Version:       buildinfo.Describe("hsrcpay"),
		Annotations:   map[string]string{"group": "true"}, // its own: "commands" is added below
		SilenceErrors: true,
		// Cobra sets it for its own message; set here for help's too.
		SuggestionsMinimumDistance: suggestDistance,
		SilenceUsage:               true,
		RunE:                       a.groupRun,
	}
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetUsageTemplate(usageTemplate)
	root.SetVersionTemplate("{{.Version}}")
	root.Flags().BoolP("version", "v", false, "print the module version and VCS revision")
	pf := root.PersistentFlags()
	// No defaults from the environment here: --help would print the token.
	pf.StringVar(&a.conn.apiKey, "api-key", "", "secret key or JWT; default $HSRCPAY_API_KEY (prefer the variable:\narguments are visible to other local users)")
	pf.StringVar(&a.conn.apiURL, "api-url", "", "API base URL; default $HSRCPAY_API_URL, else "+defaultAPIURL)
	pf.DurationVar(&a.conn.timeout, "timeout", 0, "give up on the API after this long, retries included (e.g. 10s); default\n$HSRCPAY_TIMEOUT, else none beyond the client's own (30s a request)")
	a.conn.timeoutFlag = pf.Lookup("timeout")

	keys := &cobra.Command{
		Use:                        "keys",
		Short:                      "Create, rotate, list, show, change, revoke and verify API keys",
		Annotations:                group,
		RunE:                       a.groupRun,
		SuggestionsMinimumDistance: suggestDistance,
	}
	audit := &cobra.Command{
		Use:                        "audit",
		Short:                      "List an account's audit events and check their hash chain",
		Annotations:                group,
		RunE:                       a.groupRun,
		SuggestionsMinimumDistance: suggestDistance,
	}
	version := &cobra.Command{
		Use:   "version",
		Short: "print the module version and VCS revision",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(a.stdout, c.Root().Version)
			return err
		},
	}
	// Groups first, so that the help's padding counts their full paths.
	root.AddCommand(keys, audit, version)
	keys.AddCommand(a.createCmd(), a.regenerateCmd(), a.listCmd(), a.getCmd(), a.updateCmd(),
		a.switchCmd("disable"), a.switchCmd("enable"), a.deleteCmd(), a.verifyCmd())
	audit.AddCommand(a.auditListCmd(), a.auditVerifyCmd())
	for _, g := range []*cobra.Command{keys, audit} {
		for _, c := range g.Commands() {
			c.DisableFlagsInUseLine = true // each Use spells its flags out
		}
	}
	root.SetHelpCommand(a.helpCmd())
	// Cobra adds these two when it executes; added now, so that the list
	// below has them, with Short texts worded as the others are.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Short = "print a shell completion script (bash, zsh, fish, powershell)"
		}
	}

	// The root's help lists every command once, by its full path: those of
	// the groups (keys, audit) in place of the groups, then the others.
	var rows [][2]string
	for _, g := range []*cobra.Command{keys, audit} {
		for _, c := range g.Commands() {
			rows = append(rows, [2]string{c.CommandPath(), c.Short})
		}
	}
	for _, c := range root.Commands() {
		if c.Annotations["group"] == "" && (c.IsAvailableCommand() || c.Name() == "help") {
			rows = append(rows, [2]string{c.CommandPath(), c.Short})
		}
	}
	width := 0
	for _, r := range rows {
		width = max(width, len(r[0]))
	}
	lines := make([]string, len(rows))
	for i, r := range rows {
		lines[i] = fmt.Sprintf("  %-*s  %s", width, r[0], r[1])
	}
	root.Annotations["commands"] = strings.Join(lines, "\n")
	root.Long = rootHelp
	return root
}

// usageTemplate is cobra's, with commands listed by their full path (the
// root's list, its "commands" annotation, has each command once: the groups'
// commands instead of the groups), no usage line for a group (it only holds
// commands), the connection flags apart, and the exit codes.
const usageTemplate = `Usage:{{if and .Runnable (not (index .Annotations "group"))}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasExample}}

Example:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{with (index .Annotations "commands")}}
{{.}}{{else}}{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .CommandPath .CommandPathPadding}}  {{.Short}}{{end}}{{end}}{{end}}{{end}}{{if .LocalNonPersistentFlags.HasAvailableFlags}}

Flags:
{{.LocalNonPersistentFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasParent}}{{if .HasAvailableInheritedFlags}}

Connection flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{else if .HasAvailablePersistentFlags}}

Connection flags (every command takes them):
{{.PersistentFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}

` + exitCodesHelp

// groupRun runs a command that only holds commands: without one it prints
// its help to stderr (exit 2); "help" prints it to stdout.
func (a *app) groupRun(c *cobra.Command, args []string) error {
	switch {
	case len(args) == 0:
		c.SetOut(a.stderr)
		_ = c.Help() // a usage error: exit 2 whether or not the help could be written
		if c.HasParent() {
			c.SetOut(nil) // the root's again
		} else {
			c.SetOut(a.stdout)
		}
		return exitCode(exitUsage)
	case args[0] == "help":
		return c.Help()
	}
	return exitCode(usageError(a.stderr, c.CommandPath(), unknownCommand(c, args[0])))
}

// helpCmd is "help [COMMAND]": the command's help on stdout (exit 0), or
// exit 2 for a command that does not exist.
func (a *app) helpCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show the help of any command",
		ValidArgsFunction: func(c *cobra.Command, args []string, _ string) ([]cobra.Completion, cobra.ShellCompDirective) {
			target, _, err := c.Root().Find(args)
			if err != nil || target == nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var names []cobra.Completion
			for _, sub := range target.Commands() {
				if sub.IsAvailableCommand() {
					names = append(names, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return names, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				msg := fmt.Sprintf("no help for %q", strings.Join(args, " "))
				if target != nil && len(rest) > 0 {
					msg += didYouMean(target, rest[0])
				}
				return exitCode(usageError(a.stderr, "hsrcpay help", msg))
			}
			return target.Help()
		},
	}
}

// usageError reports a bad command line and returns exitUsage.
func usageError(stderr io.Writer, cmd, msg string) int {
	eprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", cmd, msg, cmd)
	return exitUsage
}

// completeValues offers fixed values for a flag in shell completion.
func completeValues(c *cobra.Command, flag string, values ...string) {
	_ = c.RegisterFlagCompletionFunc(flag, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
}
