// Command pprofserver runs the real server (server.New on SQLite, or on
// PostgreSQL with -postgres, wired like
// `hsrcpay-server serve`: JSON access log on stderr through logwriter, in-memory rate limiter,
// usage flushing) with net/http/pprof on a second address, for profiling
// under wrk load. It bootstraps a sandbox account and prints its managed
// keys as JSON on stdout. Used by .ci/bench/profile.sh; not part of the product.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"log"
	"log/slog"
	"net/http"
	_ "net/http/pprof"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/internal/logwriter"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/postgres"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/server"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18580", "API listen address")
	pprofAddr := flag.String("pprof", "127.0.0.1:18581", "pprof listen address")
	dir := flag.String("dir", "", "SQLite directory (this or -postgres)")
	pgURL := flag.String("postgres", "", "PostgreSQL URL of a fresh database (instead of -dir)")
	account := flag.String("account", "acct_demo", "sandbox account to bootstrap")
	validate := flag.String("validate-responses", strconv.FormatFloat(config.DefaultResponseValidation, 'g', -1, 64),
		"HSRCPAY_VALIDATE_RESPONSES: true, false or the share of responses checked (default: production's)")
	sync := flag.String("synchronous", "NORMAL", "SQLite synchronous pragma")
	logLevel := flag.String("log-level", "info", "access log level (info logs every request, as in production)")
	cacheKeys := flag.Int("cache-keys", 0, "HSRCPAY_CREDENTIAL_CACHE_KEYS: the credential cache's size (0: the default)")
	flag.Parse()
	if (*dir == "") == (*pgURL == "") {
		log.Fatal("pprofserver: one of -dir and -postgres is required")
	}
	share, err := config.ParseResponseValidation(*validate)
	if err != nil {
		log.Fatalf("pprofserver: -validate-responses: %v", err)
	}
	runtime.SetBlockProfileRate(10_000) // one sample per 10µs blocked
	runtime.SetMutexProfileFraction(10)

	ctx := context.Background()
	var st store.Store
	if *pgURL != "" {
		st, err = postgres.Open(ctx, *pgURL)
	} else {
		st, err = sqlite.Open(ctx, *dir, sqlite.Options{Synchronous: *sync})
	}
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = st.Close() }()
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		log.Fatal(err)
	}
	srv, err := server.New(server.Options{
		Store:            st,
		RateLimits:       map[apikey.Mode]int{apikey.Live: 1_000_000, apikey.Sandbox: 1_000_000},
		AccountLimits:    map[apikey.Mode]int{apikey.Live: 1_000_000, apikey.Sandbox: 1_000_000},
		AuthFailureLimit: 1_000_000,
		MaxActiveKeys:    1_000_000, // create runs make thousands of keys
		// Production's default (the server binary's, which load.sh runs): without
		// it every request's key lookup would read SQLite.
		CredentialCacheTTL:  config.Defaults().CredentialCacheTTL,
		CredentialCacheKeys: *cacheKeys, // verify_uncached: far fewer than the keys verified
		ResponseValidation:  share,
		Logger:              slog.New(slog.NewJSONHandler(logwriter.New(os.Stderr), &slog.HandlerOptions{Level: level})), // as serve writes it
	})
	if err != nil {
		log.Fatal(err)
	}
	issued, err := srv.Service.Bootstrap(ctx, *account, []apikey.Mode{apikey.Sandbox})
	if err != nil {
		log.Fatal(err)
	}
	out := map[string]string{"account": *account}
	for _, is := range issued {
		if is.Key.Type == apikey.TypeSecret {
			out["secret"], out["secret_id"] = is.Secret, is.Key.ID
		} else {
			out["publishable"], out["publishable_id"] = is.Secret, is.Key.ID
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		log.Fatal(err)
	}
	go srv.Usage.Run(context.Background(), 5*time.Second)
	go func() { log.Fatal(http.ListenAndServe(*pprofAddr, nil)) }() // DefaultServeMux: pprof only
	hs := &http.Server{Addr: *addr, Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(hs.ListenAndServe())
}
