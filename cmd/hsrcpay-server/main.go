// Command hsrcpay-server runs the API-key service ("serve", the default) or
// provisions an account's managed keys ("bootstrap --account ID").
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCodesHelp ends every help text.
const exitCodesHelp = `Exit codes:
  0  success (serve: stopped by SIGINT or SIGTERM after draining: serving on,
     not ready, for HSRCPAY_SHUTDOWN_DRAIN, then finishing its requests)
  1  runtime failure: a port that cannot be bound, a store that cannot be
     opened (with HSRCPAY_MIGRATE=off: whose schema is not at the binary's
     version), a failed bootstrap or migration, or (audit verify) a broken
     audit chain
  2  usage or configuration: a bad command line, or a bad HSRCPAY_* value or
     flag, named in the message; nothing was started
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// exitCode ends run with that code; the command has printed why.
type exitCode int

func (e exitCode) Error() string { return "exit status " + strconv.Itoa(int(e)) }

// exit turns a command's exit code into RunE's error.
func exit(code int) error {
	if code == 0 {
		return nil
	}
	return exitCode(code)
}

// run is the whole command: args without the program name, and the output
// streams. It returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if args == nil {
		args = []string{} // nil would make cobra read os.Args
	}
	root := newRootCmd(stdout, stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	var code exitCode
	switch {
	case err == nil:
		return 0
	case errors.As(err, &code):
		return int(code)
	}
	// The parser's own errors: an unknown command or flag, a flag value of
	// the wrong type, an argument where none belongs.
	if cmd == nil {
		cmd = root
	}
	eprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", cmd.CommandPath(), strings.TrimRight(err.Error(), "\n"), cmd.CommandPath())
	return 2
}

// eprintf writes a diagnostic to stderr. An error writing it is dropped on
// purpose: there is nowhere left to report it, and the exit code still says
// that the command failed.
func eprintf(stderr io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(stderr, format, args...)
}

// newRootCmd builds the command tree. The root command serves, as serve
// does, so that a bare hsrcpay-server (make run) keeps serving.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "hsrcpay-server",
		Short: "HSRCPAY API-key service",
		Long: `hsrcpay-server runs the HSRCPAY API-key service. Without a command it serves,
exactly as 'hsrcpay-server serve' does, and takes the same flags.`,
		Version:       buildinfo.Describe("hsrcpay-server"),
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE:          func(c *cobra.Command, _ []string) error { return exit(serveRun(c, stdout, stderr)) },
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetUsageTemplate(usageTemplate)
	root.SetVersionTemplate("{{.Version}}")
	root.SetFlagErrorFunc(flagError)
	root.Flags().BoolP("version", "v", false, "print the module version and VCS revision")
	registerServeFlags(root)

	audit, migrate := newAuditCmd(stdout, stderr), newMigrateCmd(stdout, stderr)
	// Groups join the root first, so that the help's padding counts full paths.
	root.AddCommand(newServeCmd(stdout, stderr), newBootstrapCmd(stdout, stderr),
		newRotateManagedCmd(stdout, stderr), audit, migrate, newVersionCmd(stdout))
	root.AddCommand(backupCommands(stdout, stderr)...) // backup.go
	audit.AddCommand(newAuditVerifyCmd(stdout, stderr))
	addMigrateCmds(migrate, stdout, stderr)

	root.SetHelpCommand(helpCmd(stdout, stderr))
	return root
}

// usageTemplate is cobra's, with commands listed by their full path, no
// usage line for a group (it only holds commands), and the exit codes.
const usageTemplate = `Usage:{{if and .Runnable (not (index .Annotations "group"))}}
  {{.UseLine}}{{end}}{{if .HasAvailableSubCommands}}
  {{.CommandPath}} [command]{{end}}{{if .HasExample}}

Examples:
{{.Example}}{{end}}{{if .HasAvailableSubCommands}}

Available Commands:{{range .Commands}}{{if (or .IsAvailableCommand (eq .Name "help"))}}
  {{rpad .CommandPath .CommandPathPadding}}  {{.Short}}{{end}}{{end}}{{end}}{{if .HasAvailableLocalFlags}}

Flags:
{{.LocalFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableInheritedFlags}}

Global Flags:
{{.InheritedFlags.FlagUsages | trimTrailingWhitespaces}}{{end}}{{if .HasAvailableSubCommands}}

Use "{{.CommandPath}} [command] --help" for more information about a command.{{end}}

` + exitCodesHelp

// groupRun runs a command that only holds commands: without one it prints
// its help to stderr (exit 2); "help" prints it to stdout.
func groupRun(stdout, stderr io.Writer) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		switch {
		case len(args) == 0:
			c.SetOut(stderr)
			_ = c.Help() // a usage error: exit 2 whether or not the help could be written
			c.SetOut(nil)
			return exitCode(2)
		case args[0] == "help":
			return c.Help()
		}
		msg := fmt.Sprintf("unknown command %q", args[0])
		if s := c.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		eprintf(stderr, "%s: %s\nRun '%s --help' for usage.\n", c.CommandPath(), msg, c.CommandPath())
		return exitCode(2)
	}
}

// helpCmd is "help [command]": the command's help on stdout (exit 0), or
// exit 2 for a command that does not exist.
func helpCmd(stdout, stderr io.Writer) *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
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
				root := c.Root().Name()
				eprintf(stderr, "%s help: no help for %q\nRun '%s help' for the commands.\n", root, strings.Join(args, " "), root)
				return exitCode(2)
			}
			return target.Help()
		},
	}
}

// Kinds of setting, told apart by their documented default (an unset
// default is a string).
const (
	kindString   = "string"
	kindInt      = "int"
	kindBool     = "bool"
	kindDuration = "duration"
)

func settingKind(v config.Var) string {
	if _, err := strconv.Atoi(v.Default); err == nil {
		return kindInt
	}
	if v.Default == "true" || v.Default == "false" {
		return kindBool
	}
	if _, err := time.ParseDuration(v.Default); err == nil {
		return kindDuration
	}
	return kindString
}

// flagName is the flag of a variable: HSRCPAY_RATE_LIMIT_LIVE → rate-limit-live.
func flagName(variable string) string {
	return strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(variable, "HSRCPAY_")), "_", "-")
}

// envAnnotation marks a serve flag with its variable.
const envAnnotation = "hsrcpay_env"

// registerServeFlags gives every HSRCPAY_* variable a typed flag whose
// default is the variable's documented default (never the environment's
// value, which --help would print).
func registerServeFlags(cmd *cobra.Command) {
	fs := cmd.Flags()
	for _, v := range config.Variables {
		name, help := flagName(v.Name), v.Help+" ($"+v.Name+")"
		switch settingKind(v) {
		case kindInt:
			n, _ := strconv.Atoi(v.Default)
			fs.Int(name, n, help)
		case kindBool:
			fs.Bool(name, v.Default == "true", help)
		case kindDuration:
			d, _ := time.ParseDuration(v.Default)
			fs.Duration(name, d, help)
		default:
			fs.String(name, v.Default, help)
		}
		_ = fs.SetAnnotation(name, envAnnotation, []string{v.Name})
	}
	// --validate-responses was a boolean flag and takes a share now
	// (true, false or 0 to 1): alone it still means true.
	fs.Lookup(flagName("HSRCPAY_VALIDATE_RESPONSES")).NoOptDefVal = "true"
	for name, values := range map[string][]string{
		"log-level":          {"debug", "info", "warn", "error"},
		"sqlite-synchronous": {"NORMAL", "FULL", "OFF", "EXTRA"},
	} {
		_ = cmd.RegisterFlagCompletionFunc(name, cobra.FixedCompletions(values, cobra.ShellCompDirectiveNoFileComp))
	}
}

// serveLookup reads a setting from its flag when the flag was given, else
// from the environment: a flag wins over the environment.
func serveLookup(fs *pflag.FlagSet, env func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		if f := fs.Lookup(flagName(name)); f != nil && f.Changed {
			return f.Value.String(), true
		}
		return env(name)
	}
}

// flagError names the variable behind a serve flag whose value has the
// wrong type (a range or format the type allows is config.Load's to refuse).
func flagError(_ *cobra.Command, err error) error {
	var bad *pflag.InvalidValueError
	if !errors.As(err, &bad) {
		return err
	}
	f := bad.GetFlag()
	env := f.Annotations[envAnnotation]
	if len(env) == 0 {
		return err
	}
	want := map[string]string{
		"int":      "a whole number",
		"bool":     "true or false",
		"duration": "a duration such as 500ms, 30s or 24h",
	}[f.Value.Type()]
	if want == "" {
		return err
	}
	return fmt.Errorf("bad configuration: --%s=%q (%s): want %s", f.Name, bad.GetValue(), env[0], want)
}

// loadConfig reads the settings; code is 2 (reported) when they are bad.
func loadConfig(lookup func(string) (string, bool), stderr io.Writer) (config.Config, int) {
	cfg, err := config.Load(lookup)
	if err != nil {
		eprintf(stderr, "hsrcpay-server: bad configuration:\n%v\n", err)
		return cfg, 2
	}
	return cfg, 0
}

// openStore opens the store HSRCPAY_DATABASE_URL names, for serve and every
// command that uses it. HSRCPAY_MIGRATE=auto migrates it first: through
// HSRCPAY_MIGRATION_DATABASE_URL when set (the application's role then only
// reads the versions), else as it opens it. Off migrates nothing and refuses
// a schema at another version than the binary's.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	kind, loc, err := config.ParseDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	schema := store.SchemaMigrate
	switch {
	case cfg.Migrate == config.MigrateOff:
		schema = store.SchemaExact
	case cfg.MigrationURL != "":
		m, err := openMigrator(cfg)
		if err == nil {
			err = m.Up(ctx, 0, nil)
			_ = m.Close() // its work is committed or failed already
		}
		if err != nil {
			return nil, fmt.Errorf("migrating with HSRCPAY_MIGRATION_DATABASE_URL: %w", err)
		}
		// A newer binary's schema is served, as auto serves it.
		schema = store.SchemaNotOlder
	}
	var st store.Store
	switch kind {
	case config.SQLite:
		st, err = sqlite.Open(ctx, loc, sqlite.Options{Synchronous: cfg.SQLiteSynchronous, Schema: schema})
	case config.Postgres:
		st, err = postgres.OpenOptions(ctx, loc, postgres.Options{Timeout: cfg.StoreTimeout, Schema: schema})
	default:
		return nil, fmt.Errorf("HSRCPAY_DATABASE_URL: unknown store %q", kind)
	}
	if err == nil {
		return st, nil
	}
	var sv *store.SchemaVersionError
	switch {
	case !errors.As(err, &sv):
	case sv.Newer():
		err = fmt.Errorf("%w: HSRCPAY_MIGRATE=off refuses it; run the release that migrated it, or roll the schema back with that release's 'hsrcpay-server migrate down --to %d'", err, sv.Want)
	case cfg.MigrationURL != "" && cfg.Migrate != config.MigrateOff:
		err = fmt.Errorf("%w: HSRCPAY_MIGRATION_DATABASE_URL and HSRCPAY_DATABASE_URL must name the same database", err)
	default:
		err = fmt.Errorf("%w: run 'hsrcpay-server migrate up' (HSRCPAY_MIGRATE=off: nothing migrates at start)", err)
	}
	return nil, err // not st: a nil *Store in a store.Store is not nil
}
