package server_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/testenv"
	"github.com/hsrcpay/apikeys/server"
)

// httpsClient trusts only the test's CA and speaks HTTP/2 when offered.
func httpsClient(pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
	}}
}

// TestTLSServesTheAPIOverHTTP2: the API served as hsrcpay-server serves it
// with HSRCPAY_TLS_* (the reloader's config, http.Server.ServeTLS): the Go
// client, trusting only the test's CA, creates a key over HTTPS; HTTP/2 is
// negotiated; TLS 1.1 is refused and TLS 1.2 accepted; files replaced by a
// new leaf are served, without a restart, once the poll has seen them.
func TestTLSServesTheAPIOverHTTP2(t *testing.T) {
	logs := &hxLockedBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	env := testenv.New(t, testenv.Config{Logger: log})
	ca := testenv.NewTLSCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.Leaf(t, 1001)
	testenv.ReplaceFile(t, certFile, c1)
	testenv.ReplaceFile(t, keyFile, k1)
	certs, err := server.NewCertReloader(certFile, keyFile, log)
	if err != nil {
		t.Fatal(err)
	}
	const every = 50 * time.Millisecond
	rctx, stop := context.WithCancel(context.Background())
	defer stop()
	go certs.Run(rctx, every)

	ln, err := new(net.ListenConfig).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: env.Server, TLSConfig: certs.TLSConfig(), ReadHeaderTimeout: 10 * time.Second, ErrorLog: server.HTTPErrorLog(log)}
	done := make(chan error, 1)
	go func() { done <- hs.ServeTLS(ln, "", "") }()
	t.Cleanup(func() {
		_ = hs.Close() // the test is over
		if err := <-done; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("ServeTLS: %v", err)
		}
	})
	addr := ln.Addr().String()
	root := "https://" + addr

	mk := env.Bootstrap("acct_tls")
	hc := httpsClient(ca.Pool)
	c, err := client.New(root+server.BasePath, mk[apikey.Sandbox].Secret, client.WithHTTPClient(hc), client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	key, err := c.CreateAPIKey(context.Background(), "acct_tls", client.CreateAPIKeyRequest{Name: "over tls", Permissions: client.Permissions{}})
	if err != nil {
		t.Fatalf("create over HTTPS: %v", err)
	}
	if key.ID == "" {
		t.Fatal("create over HTTPS returned no key")
	}

	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, root+"/healthz", nil)
	res, body := hxDo(t, hc, req) //nolint:bodyclose // hxDo reads and closes the body
	if res.StatusCode != 200 || res.ProtoMajor != 2 || res.TLS == nil || res.TLS.NegotiatedProtocol != "h2" {
		t.Fatalf("healthz over HTTPS: %d %s (ALPN %q): %s; want 200 over HTTP/2", res.StatusCode, res.Proto, res.TLS.NegotiatedProtocol, body)
	}

	// The version floor: 1.1 refused, 1.2 accepted.
	for _, tc := range []struct {
		version uint16
		ok      bool
	}{{tls.VersionTLS10, false}, {tls.VersionTLS11, false}, {tls.VersionTLS12, true}, {tls.VersionTLS13, true}} {
		d := tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool, MinVersion: tc.version, MaxVersion: tc.version}} //nolint:gosec // the test offers old versions on purpose, to see them refused
		conn, err := d.DialContext(context.Background(), "tcp", addr)
		if conn != nil {
			_ = conn.Close() // a probe
		}
		if (err == nil) != tc.ok {
			t.Errorf("TLS version %s: handshake error %v, want accepted %v", tls.VersionName(tc.version), err, tc.ok)
		}
	}

	// The refused handshakes are in the JSON log, at DEBUG (they come from outside).
	if !strings.Contains(logs.String(), `{"time":`) || !strings.Contains(logs.String(), `"level":"DEBUG","msg":"http server error","err":"http: TLS handshake error from 127.0.0.1:`) {
		t.Errorf("the refused handshakes are not logged at DEBUG in JSON:\n%s", logs.String())
	}

	// A new leaf, by replacing the files: served without a restart.
	if got := testenv.ServedSerial(t, addr, ca.Pool); got != 1001 {
		t.Fatalf("served serial %d, want 1001", got)
	}
	c2, k2 := ca.Leaf(t, 1002)
	testenv.ReplaceFile(t, keyFile, k2) // the key first: a poll between the two sees a mismatch and keeps the old pair
	testenv.ReplaceFile(t, certFile, c2)
	start := time.Now()
	for testenv.ServedSerial(t, addr, ca.Pool) != 1002 {
		// Generous against a loaded machine; the figure is logged below.
		if time.Since(start) > 200*every {
			t.Fatalf("the new certificate was not served %s after the files changed (poll every %s)", time.Since(start), every)
		}
		time.Sleep(every / 5)
	}
	t.Logf("new certificate served %s after the files changed (poll every %s)", time.Since(start).Round(time.Millisecond), every)
	if !strings.Contains(logs.String(), `"msg":"TLS certificate reloaded"`) {
		t.Errorf("no reload logged:\n%s", logs.String())
	}
	// The client keeps working, on the same or a new connection.
	if _, err := c.CreateAPIKey(context.Background(), "acct_tls", client.CreateAPIKeyRequest{Name: "after reload", Permissions: client.Permissions{}}); err != nil {
		t.Fatalf("create after the reload: %v", err)
	}
}

// TestTLSCertReloader: a pair that does not load is refused at start, saying
// why; a broken replacement is logged (once) and the previous pair served;
// nothing changes when the files do not; the next good pair is served.
func TestTLSCertReloader(t *testing.T) {
	ca := testenv.NewTLSCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	c1, k1 := ca.Leaf(t, 1)
	_, kOther := ca.Leaf(t, 99)
	testenv.ReplaceFile(t, certFile, c1)
	testenv.ReplaceFile(t, keyFile, kOther)

	// At start: each bad pair refused with a message naming the variables.
	for what, files := range map[string][2]string{
		"a key of another certificate":  {certFile, keyFile},
		"a missing certificate":         {filepath.Join(dir, "nope.crt"), keyFile},
		"a certificate that is not PEM": {keyFile, keyFile},
	} {
		_, err := server.NewCertReloader(files[0], files[1], nil)
		if err == nil || !strings.Contains(err.Error(), "HSRCPAY_TLS_CERT_FILE") {
			t.Errorf("%s: %v, want an error naming HSRCPAY_TLS_CERT_FILE", what, err)
		}
	}
	if _, err := server.NewCertReloader(certFile, keyFile, nil); err == nil || !strings.Contains(err.Error(), "private key does not match public key") {
		t.Errorf("a mismatched pair: %v, want the mismatch named", err)
	}

	testenv.ReplaceFile(t, keyFile, k1)
	logs := &hxLockedBuffer{}
	r, err := server.NewCertReloader(certFile, keyFile, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	serial := func() int64 { return r.Certificate().Leaf.SerialNumber.Int64() }
	if reloaded, err := r.Check(); reloaded || err != nil || serial() != 1 {
		t.Fatalf("unchanged files: reloaded %v, %v, serial %d", reloaded, err, serial())
	}
	// A broken certificate: an error, the old pair kept; not retried until the files change again.
	testenv.ReplaceFile(t, certFile, []byte("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"))
	if reloaded, err := r.Check(); reloaded || err == nil || serial() != 1 {
		t.Fatalf("broken certificate: reloaded %v, %v, serial %d; want an error and serial 1", reloaded, err, serial())
	}
	if reloaded, err := r.Check(); reloaded || err != nil {
		t.Fatalf("broken certificate, checked again: reloaded %v, %v; want it reported once", reloaded, err)
	}
	if got, err := r.GetCertificate(nil); err != nil || got.Leaf.SerialNumber.Int64() != 1 {
		t.Fatalf("handshakes get %v, %v; want the previous pair", got, err)
	}
	// A file rewritten in place (not renamed) is seen too.
	c2, k2 := ca.Leaf(t, 2)
	if err := os.WriteFile(keyFile, k2, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, c2, 0o600); err != nil {
		t.Fatal(err)
	}
	if reloaded, err := r.Check(); !reloaded || err != nil || serial() != 2 {
		t.Fatalf("good pair written in place: reloaded %v, %v, serial %d; want serial 2", reloaded, err, serial())
	}

	// Run logs a failure and keeps serving.
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { r.Run(ctx, 10*time.Millisecond); close(ran) }()
	testenv.ReplaceFile(t, certFile, []byte("garbage"))
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), "TLS certificate reload failed; still serving the previous certificate") {
		if time.Now().After(deadline) {
			t.Fatalf("no failed reload logged:\n%s", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	<-ran
	if serial() != 2 {
		t.Fatalf("serial %d after a failed reload, want 2", serial())
	}
	if n := strings.Count(logs.String(), "TLS certificate reload failed"); n != 1 {
		t.Errorf("the failed reload logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Error("a log line holds key material")
	}
	// The TLS config: 1.2 and up, HTTP/2 first.
	cfg := r.TLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 || len(cfg.NextProtos) == 0 || cfg.NextProtos[0] != "h2" || cfg.CipherSuites != nil {
		t.Errorf("TLS config: min %x, ALPN %v, suites %v; want 1.2, h2 first, Go's defaults", cfg.MinVersion, cfg.NextProtos, cfg.CipherSuites)
	}
}
