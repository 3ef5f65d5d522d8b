// Command hsrcpay-server runs the API-key service ("serve", the default) or
// provisions an account's managed keys ("bootstrap --account ID").
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/ratelimit"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/server"
)

const usage = `usage:
  hsrcpay-server [serve]               run the API (settings from HSRCPAY_* variables)
  hsrcpay-server bootstrap --account ID [--mode live|test|both]
                                       create an account and print its managed keys once, as JSON
  hsrcpay-server audit verify          check every account's audit chain in both modes;
                                       exit 1 naming the first broken link
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	lookup := os.LookupEnv
	if cmd == "serve" {
		var ok bool
		if lookup, ok = serveFlags(args, stderr); !ok {
			return 2
		}
	}
	cfg, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server: bad configuration:\n%v\n", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: cfg.LogLevel}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch cmd {
	case "serve":
		if err := serve(ctx, cfg, log, stdout); err != nil {
			fmt.Fprintf(stderr, "hsrcpay-server: %v\n", err)
			return 1
		}
		return 0
	case "bootstrap":
		return bootstrap(ctx, cfg, args, stdout, stderr)
	case "audit":
		return auditCmd(ctx, cfg, args, stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "hsrcpay-server: unknown command %q\n%s", cmd, usage)
	return 2
}

// serveFlags gives every HSRCPAY_* variable a flag (--rate-limit-live for
// HSRCPAY_RATE_LIMIT_LIVE); a flag wins over the environment.
func serveFlags(args []string, stderr io.Writer) (func(string) (string, bool), bool) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	vals := map[string]*string{}
	for _, v := range config.Variables {
		name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(v.Name, "HSRCPAY_")), "_", "-")
		help := v.Help + " (" + v.Name
		if v.Default != "" {
			help += ", default " + v.Default
		}
		vals[v.Name] = fs.String(name, "", help+")")
	}
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set["HSRCPAY_"+strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))] = true })
	return func(name string) (string, bool) {
		if set[name] {
			return *vals[name], true
		}
		return os.LookupEnv(name)
	}, true
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
		return postgres.Open(ctx, loc)
	}
	return nil, fmt.Errorf("HSRCPAY_DATABASE_URL: unknown store %q", kind)
}

func serve(ctx context.Context, cfg config.Config, log *slog.Logger, stdout io.Writer) error {
	st, err := openStore(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.Close()
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
	if cfg.RedisURL != "" {
		shared, rdb, err := ratelimit.NewRedis(cfg.RedisURL)
		if err != nil {
			return fmt.Errorf("HSRCPAY_REDIS_URL: %w", err)
		}
		defer rdb.Close()
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
	srv, err := server.New(server.Options{
		Store:             st,
		JWT:               jwtv,
		Limiter:           limiter,
		Metrics:           m,
		RateLimits:        map[apikey.Mode]int{apikey.Live: cfg.RateLimitLive, apikey.Sandbox: cfg.RateLimitSandbox},
		ValidateResponses: cfg.ValidateResponses,
		TrustProxy:        cfg.TrustProxy,
		MaxActiveKeys:     cfg.MaxActiveKeys,
		Logger:            log,
		AccountLimits:     map[apikey.Mode]int{apikey.Live: cfg.AccountRateLimitLive, apikey.Sandbox: cfg.AccountRateLimitSandbox},
		AuthFailureLimit:  cfg.AuthFailureLimit,
	})
	if err != nil {
		return err
	}
	// Bind both listeners before anything else happens (the demo account's
	// keys are rotated and printed only once the server can answer): a port
	// in use is an error at start, naming its variable.
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("HSRCPAY_ADDR: %w", err)
	}
	defer ln.Close()
	hs := &http.Server{
		Handler:           srv,
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
	listeners := []listener{{"HSRCPAY_ADDR", hs, ln}}
	// Metrics on a listener of their own (rule 11): they show every tenant's
	// traffic and the failure reasons the API folds into one code.
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			return fmt.Errorf("HSRCPAY_METRICS_ADDR: %w", err)
		}
		defer mln.Close()
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
	usageCtx, stopUsage := context.WithCancel(context.Background())
	usageDone := make(chan struct{})
	go func() { srv.Usage.Run(usageCtx, cfg.UsageFlushInterval); close(usageDone) }()

	errc := make(chan error, len(listeners))
	for _, l := range listeners {
		go func() {
			if err := l.hs.Serve(l.ln); !errors.Is(err, http.ErrServerClosed) {
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
			l.hs.Close()
		}
		stopUsage()
		<-usageDone
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout.String())
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	// The API drains its in-flight requests; metrics stay scrapeable meanwhile
	// and stop with it.
	err = hs.Shutdown(sctx)
	for _, l := range listeners[1:] {
		if merr := l.hs.Shutdown(sctx); err == nil {
			err = merr
		}
	}
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

func bootstrap(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	fs.SetOutput(stderr)
	account := fs.String("account", "", "account id to create (required)")
	modeFlag := fs.String("mode", "both", "live, test or both")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if !config.ValidAccountID(*account) {
		fmt.Fprintln(stderr, "hsrcpay-server bootstrap: --account must be 1-64 letters, digits, _ or - (starting with a letter or digit)")
		return 2
	}
	modes := map[string][]apikey.Mode{"live": {apikey.Live}, "test": {apikey.Sandbox}, "both": apikey.Modes}[*modeFlag]
	if modes == nil {
		fmt.Fprintln(stderr, "hsrcpay-server bootstrap: --mode must be live, test or both")
		return 2
	}
	svc, closeFn, err := offlineService(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server bootstrap: %v\n", err)
		return 1
	}
	defer closeFn()
	issued, err := svc.Bootstrap(ctx, *account, modes)
	if err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server bootstrap: %v\n", err)
		return 1
	}
	if err := printKeys(stdout, issued); err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server bootstrap: %v\n", err)
		return 1
	}
	return 0
}

// offlineService is the business layer without HTTP, for commands.
func offlineService(ctx context.Context, cfg config.Config) (*apikeys.Service, func(), error) {
	spec, err := server.LoadSpec()
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	return apikeys.New(st, spec.Catalog, apikeys.Options{MaxActiveKeys: cfg.MaxActiveKeys}), func() { st.Close() }, nil
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

// auditCmd runs "audit verify": every chain, recomputed from the store.
func auditCmd(ctx context.Context, cfg config.Config, args []string, stdout, stderr io.Writer) int {
	if len(args) != 1 || args[0] != "verify" {
		fmt.Fprintf(stderr, "hsrcpay-server audit: want \"audit verify\"\n%s", usage)
		return 2
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server audit verify: %v\n", err)
		return 1
	}
	defer st.Close()
	n, err := apikeys.VerifyAudit(ctx, st)
	if err != nil {
		fmt.Fprintf(stderr, "hsrcpay-server audit verify: %v (after %d events)\n", err, n)
		return 1
	}
	fmt.Fprintf(stdout, "audit chains intact: %d events checked\n", n)
	return 0
}
