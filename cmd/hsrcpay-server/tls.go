package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/internal/buildinfo"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/server"
)

// serveTLS is serve's HTTPS on HSRCPAY_ADDR (HSRCPAY_TLS_CERT_FILE and
// HSRCPAY_TLS_KEY_FILE); its zero value is plain HTTP. The metrics listener
// stays plain HTTP: it belongs on loopback or a private network a scraper
// reaches, and Prometheus scrapes plain HTTP by default.
type serveTLS struct {
	certs *server.CertReloader
	every time.Duration
}

// loadTLS reads the pair before anything is bound or opened: a pair that
// does not load stops the server at start, saying why.
func loadTLS(cfg config.Config, log *slog.Logger) (serveTLS, error) {
	if cfg.TLSCertFile == "" {
		return serveTLS{}, nil
	}
	certs, err := server.NewCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, log)
	if err != nil {
		return serveTLS{}, err
	}
	return serveTLS{certs: certs, every: cfg.TLSReloadInterval}, nil
}

func (t serveTLS) on() bool { return t.certs != nil }

// apply makes hs serve HTTPS (serveOn then calls ServeTLS, which keeps
// HTTP/2 on).
func (t serveTLS) apply(hs *http.Server) {
	if t.on() {
		hs.TLSConfig = t.certs.TLSConfig()
	}
}

// run re-reads the pair when its files change, until ctx ends.
func (t serveTLS) run(ctx context.Context) {
	if t.on() {
		t.certs.Run(ctx, t.every)
	}
}

// url is a base URL of the API with its scheme.
func (t serveTLS) url(u string) string {
	if t.on() {
		return "https://" + strings.TrimPrefix(u, "http://")
	}
	return u
}

// serveOn serves hs on ln, over TLS when hs has a TLS config (the
// certificate comes from its GetCertificate, so no file is named here), with
// net/http's own errors (failed handshakes among them) in the JSON log.
func serveOn(hs *http.Server, ln net.Listener, log *slog.Logger) error {
	hs.ErrorLog = server.HTTPErrorLog(log)
	if hs.TLSConfig != nil {
		return hs.ServeTLS(ln, "", "")
	}
	return hs.Serve(ln)
}

// startSummary is the "listening" line's attributes: the build, where it
// listens, and the settings an operator checks first. The store is named by
// its kind only: its URL may hold a password.
func startSummary(cfg config.Config, addr, metricsAddr string, tls serveTLS) []any {
	bi := buildinfo.Read()
	return []any{
		"version", bi.Version, "revision", bi.Revision, "go_version", bi.GoVersion,
		"addr", addr, "metrics_addr", metricsAddr,
		"tls", tls.on(),
		"database", mustKind(cfg.DatabaseURL),
		"redis", cfg.RedisURL != "",
		"credential_cache_ttl", cfg.CredentialCacheTTL.String(),
		"credential_cache_keys", cfg.CredentialCacheKeys,
		"credential_cache_memory", cfg.CredentialCacheMemory,
		"validate_responses", strconv.FormatFloat(cfg.ResponseValidation, 'g', -1, 64),
		"trusted_proxies", cfg.TrustedProxies != "",
		"log_level", cfg.LogLevel.String(),
	}
}
