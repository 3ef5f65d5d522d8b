// Command hsrcpay-server runs the API-key service ("serve", the default) or
// provisions an account's managed keys ("bootstrap --account ID").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/logwriter"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/secretscan"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/server"
	"github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// exitCodesHelp ends every help text.
const exitCodesHelp = `Exit codes:
  0  success (serve: stopped by SIGINT or SIGTERM after draining: serving on,
     not ready, for HSRCPAY_SHUTDOWN_DRAIN, then finishing its requests)
  1  runtime failure: a port that cannot be bound, a store that cannot be
     opened, a failed bootstrap, or (audit verify) a broken audit chain
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

	serve := &cobra.Command{
		Use:   "serve",
		Short: "Run the API (the default command)",
		Long: `Runs the API until SIGINT or SIGTERM. Every setting is an HSRCPAY_* environment
variable and also a flag (HSRCPAY_RATE_LIMIT_LIVE is --rate-limit-live); a flag
wins over the environment. Bad values stop the server before anything starts,
naming the variable (exit 2). Both listeners are bound first: only then is the
demo account (--demo-account) provisioned and its keys printed, so a server
that cannot bind its port changes nothing.`,
		Args: cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error { return exit(serveRun(c, stdout, stderr)) },
	}
	registerServeFlags(serve)

	var account, mode string
	bootstrap := &cobra.Command{
		Use:   "bootstrap --account ID [--mode live|test|both]",
		Short: "Create an account and print its managed keys once, as JSON",
		Long: `Creates an account and its managed keys (a secret and a publishable key per
mode) and prints them once, as JSON: secrets are never stored and cannot be
shown again. Refuses an account that already exists in any of the modes,
writing nothing. Settings (HSRCPAY_DATABASE_URL, ...) come from the environment.`,
		Example: "  hsrcpay-server bootstrap --account acct_123\n  hsrcpay-server bootstrap --account acct_123 --mode test",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(bootstrapRun(account, mode, stdout, stderr))
		},
	}
	bootstrap.DisableFlagsInUseLine = true // its Use spells them out
	bootstrap.Flags().StringVar(&account, "account", "", "account id to create: 1-64 letters, digits, _ or - (required)")
	bootstrap.Flags().StringVar(&mode, "mode", "both", "modes to create it in: live, test or both")
	_ = bootstrap.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"live", "test", "both"}, cobra.ShellCompDirectiveNoFileComp))

	var rotAccount, rotMode string
	rotate := &cobra.Command{
		Use:   "rotate-managed --account ID --mode live|test",
		Short: "Give an account's managed keys new secrets and print them once, as JSON",
		Long: `Rotates an account's managed keys in one mode (its secret and publishable key),
without grace: the old secrets stop working, and the new ones are printed once,
as JSON. For an owner who lost the managed secret, or whose managed secret key
a leak report rotated (its new secret is shown to nobody; a leak report never
rotates the publishable key, public by design). It restores the account's
root credential: a managed secret key found switched off is switched back on
in the same transaction (said on stderr); one that is deleted or expired
cannot be restored, and the command fails (exit 1) changing nothing. Each
change is recorded (actor platform). With HSRCPAY_REDIS_URL the change is
announced to running servers as they announce theirs (waiting at most 2s
before exiting): they refuse the old secrets within 1s. Without it, or when
Redis cannot be reached (a warning on stderr), within their credential
cache's lifetime (HSRCPAY_CREDENTIAL_CACHE_TTL).
Settings (HSRCPAY_DATABASE_URL, ...) come from the environment.`,
		Example: "  hsrcpay-server rotate-managed --account acct_123 --mode live",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(rotateManagedRun(rotAccount, rotMode, stdout, stderr))
		},
	}
	rotate.DisableFlagsInUseLine = true // its Use spells them out
	rotate.Flags().StringVar(&rotAccount, "account", "", "account id (required)")
	rotate.Flags().StringVar(&rotMode, "mode", "", "mode whose managed keys to rotate: live or test (required)")
	_ = rotate.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"live", "test"}, cobra.ShellCompDirectiveNoFileComp))

	audit := &cobra.Command{
		Use:         "audit",
		Short:       "Audit-trail commands",
		Annotations: map[string]string{"group": "true"},
		RunE:        groupRun(stdout, stderr),
	}
	version := &cobra.Command{
		Use:   "version",
		Short: "Print the module version and VCS revision",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(stdout, c.Root().Version)
			return err
		},
	}
	// Groups join the root first, so that the help's padding counts full paths.
	root.AddCommand(serve, bootstrap, rotate, audit, version)
	audit.AddCommand(&cobra.Command{
		Use:   "verify",
		Short: "Check every account's audit chain in both modes; exit 1 naming the first broken link",
		Long: `Recomputes every account's audit hash chain in both modes from the store
(HSRCPAY_DATABASE_URL) and compares it with the head each account records.
Exit 1 names the first broken link (account, mode, seq).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return exit(auditVerifyRun(stdout, stderr)) },
	})

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

func serveRun(c *cobra.Command, stdout, stderr io.Writer) int {
	cfg, code := loadConfig(serveLookup(c.Flags(), os.LookupEnv), stderr)
	if code != 0 {
		return code
	}
	// The log lines leave the request path (internal/logwriter); every one
	// is written before serveRun prints anything else or returns (Close,
	// deferred too, for a panic), so none is lost on exit.
	lines := logwriter.New(stderr)
	defer func() { _ = lines.Close() }()
	log := slog.New(slog.NewJSONHandler(lines, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := serve(ctx, cfg, log, stdout)
	_ = lines.Close() // a failed log write has nowhere to be reported
	if err != nil {
		eprintf(stderr, "hsrcpay-server: %v\n", err)
		return 1
	}
	return 0
}

// idempotencyKey loads the key that seals the answers kept for
// Idempotency-Key replays: HSRCPAY_IDEMPOTENCY_KEY_FILE (which must exist:
// replicas share it, so none may invent its own), or, with the embedded
// SQLite store and no file named, DIR.idempotency.key beside sqlite:DIR
// (./data.idempotency.key by default), created with mode 0600 on first start.
// It is kept apart from the database on purpose: a copy of the database
// alone does not reveal the secrets in the kept answers. nil (PostgreSQL
// without a file): server.New says what that means.
func idempotencyKey(cfg config.Config, log *slog.Logger) ([]byte, error) {
	path, create := cfg.IdempotencyKeyFile, false
	if path == "" {
		kind, loc, err := config.ParseDatabaseURL(cfg.DatabaseURL)
		if err != nil || kind != config.SQLite {
			return nil, err
		}
		path, create = filepath.Clean(loc)+".idempotency.key", true
	}
	key, created, err := server.LoadIdempotencyKey(path, create)
	if err != nil {
		return nil, fmt.Errorf("HSRCPAY_IDEMPOTENCY_KEY_FILE: %w", err)
	}
	if created {
		log.Info("created the idempotency key file (keep it with the data directory's backups, apart from them)", "path", path)
	}
	return key, nil
}

// openStore opens the store HSRCPAY_DATABASE_URL names.
func openStore(ctx context.Context, cfg config.Config) (store.Store, error) {
	kind, loc, err := config.ParseDatabaseURL(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	switch kind {
	case config.SQLite:
		return sqlite.Open(ctx, loc, sqlite.Options{Synchronous: cfg.SQLiteSynchronous})
	case config.Postgres:
		return postgres.OpenOptions(ctx, loc, postgres.Options{Timeout: cfg.StoreTimeout})
	}
	return nil, fmt.Errorf("HSRCPAY_DATABASE_URL: unknown store %q", kind)
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	// GitHub's secret scanning keys first, before binding or opening
	// anything: a server that would refuse every leak report should not
	// start. A URL is re-read while serving (leakKeys.Run below).
	var leakKeys *secretscan.Keys
	if cfg.SecretScanningKeysFile != "" || cfg.SecretScanningKeysURL != "" {
		lctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		var err error
		leakKeys, err = secretscan.Load(lctx, secretscan.Config{File: cfg.SecretScanningKeysFile, URL: cfg.SecretScanningKeysURL, Logger: log})
		cancel()
		if err != nil {
			return fmt.Errorf("HSRCPAY_SECRET_SCANNING_KEYS_*: %w", err)
		}
	}
	// Bind both listeners before anything else happens: a port in use is an
	// error at start, naming its variable, before the store is opened or the
	// demo account's keys are rotated (a second `make run` must not take the
	// first one's keys away). Connections wait in the backlog until Serve.
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("HSRCPAY_ADDR: %w", err)
	}
	// Closes it if Serve never ran; after Serve, Shutdown or Close has.
	defer func() { _ = ln.Close() }()
	var mln net.Listener
	if cfg.MetricsAddr != "" {
		if mln, err = lc.Listen(ctx, "tcp", cfg.MetricsAddr); err != nil {
			return fmt.Errorf("HSRCPAY_METRICS_ADDR: %w", err)
		}
		defer func() { _ = mln.Close() }()
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if err := st.Close(); err != nil {
			log.Error("closing the store failed", "err", err)
		}
	}()
	jwtv, err := auth.NewJWTVerifier(ctx, auth.JWTConfig{
		JWKSURL: cfg.JWKSURL, PublicKeyFile: cfg.JWTPublicKeyFile, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience,
		MaxLifetime: cfg.JWTMaxLifetime,
	})
	if err != nil {
		return err
	}
	defer jwtv.Close()
	m := metrics.New()
	var limiter ratelimit.Limiter = ratelimit.NewMemory()
	var rdb *redis.Client
	if cfg.RedisURL != "" {
		var shared *ratelimit.Redis
		shared, rdb, err = ratelimit.NewRedis(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("HSRCPAY_REDIS_URL: %w", err)
		}
		defer func() { _ = rdb.Close() }() // only frees its connection pool
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		if err := rdb.Ping(pctx).Err(); err != nil {
			log.Warn("Redis unreachable at start; rate limits are per replica until it answers", "err", err)
		}
		cancel()
		limiter = &ratelimit.Fallback{Primary: shared, Secondary: limiter, OnFallback: func(err error) {
			m.LimiterErrors.Inc()
			log.Warn("Redis rate limiter failed; using this replica's in-memory budget", "err", err)
		}}
	}
	trusted, perr := config.ParseTrustedProxies(cfg.TrustedProxies)
	if perr != nil { // config.Load refused it already
		return fmt.Errorf("HSRCPAY_TRUSTED_PROXIES: %w", perr)
	}
	opts := server.Options{
		TrustedProxies:     trusted,
		Store:              st,
		JWT:                jwtv,
		Limiter:            limiter,
		Metrics:            m,
		RateLimits:         map[apikey.Mode]int{apikey.Live: cfg.RateLimitLive, apikey.Sandbox: cfg.RateLimitSandbox},
		ResponseValidation: cfg.ResponseValidation,
		MaxActiveKeys:      cfg.MaxActiveKeys,
		Logger:             log,
		AccountLimits:      map[apikey.Mode]int{apikey.Live: cfg.AccountRateLimitLive, apikey.Sandbox: cfg.AccountRateLimitSandbox},
		AuthFailureLimit:   cfg.AuthFailureLimit,
		CredentialCacheTTL: cfg.CredentialCacheTTL,
		StoreTimeout:       cfg.StoreTimeout,

		SecretScanning:      leakKeys,
		SecretScanningLimit: cfg.SecretScanningLimit,
	}
	if rdb != nil {
		// The same client as the limiter's: its short timeouts suit a
		// publish that holds a write's response; the subscription takes a
		// connection of its own.
		opts.Redis = rdb
	}
	if opts.IdempotencyKey, err = idempotencyKey(cfg, log); err != nil {
		return err
	}
	srv, err := server.New(opts)
	if err != nil {
		return err
	}
	var conns connTracker
	hs := &http.Server{
		Handler:           srv,
		ConnState:         conns.note,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
	}
	type listener struct {
		name string // its variable
		hs   *http.Server
		ln   net.Listener
	}
	apiLn := &drainListener{Listener: ln}
	listeners := []listener{{"HSRCPAY_ADDR", hs, apiLn}}
	// Metrics on a listener of their own (rule 11): they show every tenant's
	// traffic and the failure reasons the API folds into one code.
	if mln != nil {
		listeners = append(listeners, listener{"HSRCPAY_METRICS_ADDR", &http.Server{
			Handler:           srv.MetricsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       30 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
		}, mln})
	}
	if cfg.DemoAccount != "" {
		if err := demo(ctx, srv.Service, cfg, apiURL(ln.Addr()), stdout); err != nil {
			return fmt.Errorf("demo account: %w", err)
		}
	}
	// Usage keeps being recorded while the requests drain after ctx ends;
	// stopUsage ends it (with a last flush) once they have.
	usageCtx, stopUsage := context.WithCancel(context.WithoutCancel(ctx))
	usageDone := make(chan struct{})
	go func() { srv.Usage.Run(usageCtx, cfg.UsageFlushInterval); close(usageDone) }()
	// The credential cache's subscription lives as long (requests still
	// draining keep using the cache); stopped, the cache is bypassed.
	go srv.RunCredentialCache(usageCtx)
	if leakKeys != nil {
		go leakKeys.Run(usageCtx)
	}

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			err := l.hs.Serve(l.ln)
			if dl, ok := l.ln.(*drainListener); ok && dl.closed.Load() {
				return // the drain closed it
			}
			if !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s: %w", l.name, err)
			}
		}()
	}
	metricsAddr := "off"
	if len(listeners) > 1 {
		metricsAddr = listeners[1].ln.Addr().String()
	}
	log.Info("listening", "addr", ln.Addr().String(), "metrics_addr", metricsAddr, "database", mustKind(cfg.DatabaseURL))
	select {
	case err := <-errc:
		// One listener failed: stop the other too.
		for _, l := range listeners {
			_ = l.hs.Close() // the failed listener's error is the one to return
		}
		stopUsage()
		<-usageDone
		return err
	case <-ctx.Done():
	}
	// http.Server.Shutdown closes the listener and every idle keep-alive
	// connection at once, and drops any request it reads after it began: a
	// request a client sent as that happened is reset, never answered (21
	// of them at 256 connections, issue 18). So first drain: keep serving,
	// not ready (load balancers take the replica out), each response
	// closing its connection (clients stop reusing them), for
	// HSRCPAY_SHUTDOWN_DRAIN; then close the listener and let the requests
	// under way be answered (each closes its connection); only then
	// Shutdown, which finds only connections idle for the whole drain.
	// (The backlog the closing listener resets holds connections made
	// after the signal, by clients that ignored /readyz.)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownDrain+cfg.ShutdownTimeout)
	defer cancel()
	if cfg.ShutdownDrain > 0 {
		log.Info("draining: not ready, every response closes its connection", "drain", cfg.ShutdownDrain.String())
		srv.Drain()
		select {
		case err := <-errc:
			log.Error("listener failed while draining", "err", err)
		case <-time.After(cfg.ShutdownDrain):
		}
		_ = apiLn.Close() // Serve returns; its error is the drain's doing
		conns.quiet(sctx)
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	// The API drains its in-flight requests; metrics stay scrapeable meanwhile
	// and stop with it.
	err = hs.Shutdown(sctx)
	for _, l := range listeners[1:] {
		if merr := l.hs.Shutdown(sctx); err == nil {
			err = merr
		}
	}
	// The last requests' key changes leave for the other replicas before
	// the publisher stops (bounded: a Redis that does not answer costs the
	// exit at most this; the other replicas' TTL bounds what they keep).
	actx, acancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	_ = srv.FlushCredentialAnnouncements(actx) // what is not sent was counted and logged
	acancel()
	stopUsage()
	<-usageDone
	return err
}

func mustKind(u string) string {
	k, _, _ := config.ParseDatabaseURL(u)
	return k
}

// managedKey is one line of bootstrap's output.
type managedKey struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	Type      string `json:"type"`
	Mode      string `json:"mode"`
	Secret    string `json:"secret"`
}

func printKeys(w io.Writer, issued []apikeys.Issued) error {
	out := make([]managedKey, 0, len(issued))
	for _, is := range issued {
		out = append(out, managedKey{ID: is.Key.ID, AccountID: is.Key.AccountID, Type: is.Key.Type, Mode: string(is.Mode), Secret: is.Secret})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(map[string]any{"keys": out})
}

func bootstrapRun(account, mode string, stdout, stderr io.Writer) int {
	if !config.ValidAccountID(account) {
		eprintf(stderr, "hsrcpay-server bootstrap: --account must be 1-64 letters, digits, _ or - (starting with a letter or digit)\n")
		return 2
	}
	modes := map[string][]apikey.Mode{"live": {apikey.Live}, "test": {apikey.Sandbox}, "both": apikey.Modes}[mode]
	if modes == nil {
		eprintf(stderr, "hsrcpay-server bootstrap: --mode must be live, test or both\n")
		return 2
	}
	return issueOffline("bootstrap", stdout, stderr, func(ctx context.Context, svc *apikeys.Service) ([]apikeys.Issued, error) {
		return svc.Bootstrap(ctx, account, modes)
	})
}

// issueOffline is what bootstrap and rotate-managed share: the store from the
// configuration, the use case, and the secrets it issued printed once (exit
// 0), or the error (exit 1; 2 for a bad configuration).
func issueOffline(cmd string, stdout, stderr io.Writer, run func(context.Context, *apikeys.Service) ([]apikeys.Issued, error)) int {
	cfg, code := loadConfig(os.LookupEnv, stderr)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ann, err := newAnnouncer(cfg)
	if err != nil { // config.Load checked the URL already
		eprintf(stderr, "hsrcpay-server %s: %v\n", cmd, err)
		return 2
	}
	// After the keys are printed (or the command failed): the announcements
	// leave, bounded, before the process does.
	defer ann.finish(cmd, stderr)
	svc, closeFn, err := offlineService(ctx, cfg, ann.changed)
	if err == nil {
		defer closeFn()
		var issued []apikeys.Issued
		if issued, err = run(ctx, svc); err == nil {
			err = printKeys(stdout, issued)
		}
	}
	if err != nil {
		eprintf(stderr, "hsrcpay-server %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// rotateManagedRun runs "rotate-managed": new secrets for an existing
// account's managed keys in one mode, printed once.
func rotateManagedRun(account, mode string, stdout, stderr io.Writer) int {
	if !config.ValidAccountID(account) {
		eprintf(stderr, "hsrcpay-server rotate-managed: --account must be 1-64 letters, digits, _ or - (starting with a letter or digit)\n")
		return 2
	}
	m := map[string]apikey.Mode{"live": apikey.Live, "test": apikey.Sandbox}[mode]
	if m == "" {
		eprintf(stderr, "hsrcpay-server rotate-managed: --mode must be live or test\n")
		return 2
	}
	return issueOffline("rotate-managed", stdout, stderr, func(ctx context.Context, svc *apikeys.Service) ([]apikeys.Issued, error) {
		issued, err := svc.RotateManaged(ctx, account, m)
		if err == nil && len(issued) == 0 {
			err = fmt.Errorf("account %s has no managed keys in mode %s", account, mode)
		}
		// Say what was done besides new secrets, so that the operator is not
		// handed a secret that will be refused without knowing why.
		for _, is := range issued {
			switch {
			case is.Reenabled:
				eprintf(stderr, "hsrcpay-server rotate-managed: the managed secret key %s was switched off (INACTIVE): switched back on and rotated (audit events enable and regenerate)\n", is.Key.ID)
			case is.Key.Status != apikey.StatusActive:
				eprintf(stderr, "hsrcpay-server rotate-managed: the managed publishable key %s is switched off (INACTIVE), as its owner left it: rotated, still off until switched on (PATCH /v1/api-keys/%s {\"status\":\"ACTIVE\"})\n", is.Key.ID, is.Key.ID)
			}
		}
		return issued, err
	})
}

// offlineService is the business layer without HTTP, for commands; changed
// hears of every key changed (apikeys.Options.Changed).
func offlineService(ctx context.Context, cfg config.Config, changed func(apikey.Mode, string)) (*apikeys.Service, func(), error) {
	spec, err := server.LoadSpec()
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The command's work is committed (or failed) when it closes the store.
	return apikeys.New(st, spec.Catalog, apikeys.Options{MaxActiveKeys: cfg.MaxActiveKeys, Changed: changed}), func() { _ = st.Close() }, nil
}

// demo makes sure the demo account exists in the sandbox and prints keys a
// newcomer can use with curl. On later starts the sandbox managed keys are
// rotated, since secrets are not kept and cannot be shown again.
// apiURL is the base URL a client on this machine reaches the listener at
// (the bound port, so a port chosen by the system is right too).
func apiURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String() + server.BasePath
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + server.BasePath
}

func demo(ctx context.Context, svc *apikeys.Service, cfg config.Config, url string, w io.Writer) error {
	modes := []apikey.Mode{apikey.Sandbox}
	issued, err := svc.Bootstrap(ctx, cfg.DemoAccount, modes)
	if errors.Is(err, apikeys.ErrAccountExists) {
		issued, err = svc.RotateManaged(ctx, cfg.DemoAccount, apikey.Sandbox)
	}
	if err != nil {
		return err
	}
	var secret, secretID, publishable string
	for _, is := range issued {
		if is.Key.Type == apikey.TypeSecret {
			secret, secretID = is.Secret, is.Key.ID
		} else {
			publishable = is.Secret
		}
	}
	_, err = fmt.Fprintf(w, `
Sandbox demo account %q is ready. Its managed keys (shown once; rotated at each start):

export HSRCPAY_API_URL=%s
export HSRCPAY_API_KEY=%s
export HSRCPAY_KEY_ID=%s
export HSRCPAY_PUBLISHABLE_KEY=%s
export HSRCPAY_ACCOUNT=%s

`, cfg.DemoAccount, url, secret, secretID, publishable, cfg.DemoAccount)
	return err
}

// auditVerifyRun runs "audit verify": every chain, recomputed from the store.
func auditVerifyRun(stdout, stderr io.Writer) int {
	cfg, code := loadConfig(os.LookupEnv, stderr)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	st, err := openStore(ctx, cfg)
	if err != nil {
		eprintf(stderr, "hsrcpay-server audit verify: %v\n", err)
		return 1
	}
	defer func() { _ = st.Close() }() // it was only read
	n, err := apikeys.VerifyAudit(ctx, st)
	if err != nil {
		eprintf(stderr, "hsrcpay-server audit verify: %v (after %d events)\n", err, n)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "audit chains intact: %d events checked\n", n); err != nil {
		eprintf(stderr, "hsrcpay-server audit verify: writing output: %v\n", err)
		return 1
	}
	return 0
}
