package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// CertReloader serves a certificate and key pair from two PEM files and
// picks up a new pair without a restart (cert-manager, an ACME client or an
// operator replacing the files): Check compares each file's identity,
// modification time and size with what it last loaded or tried, and loads
// the pair again when either changed. A pair that fails to load (a key
// written after its certificate, a mismatch, a bad file) is logged and the
// previous pair kept; the next change is tried again.
type CertReloader struct {
	certFile, keyFile string
	log               *slog.Logger

	cert atomic.Pointer[tls.Certificate] // what handshakes get

	mu   sync.Mutex     // one Check at a time
	seen [2]os.FileInfo // the files as last loaded or tried (cert, key)
}

// NewCertReloader loads the pair once: an error (unreadable file, not PEM,
// key not matching the certificate) says which and stops the server at
// start. A certificate outside its validity period is only logged: the
// operator may be starting the server to replace it.
func NewCertReloader(certFile, keyFile string, log *slog.Logger) (*CertReloader, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &CertReloader{certFile: certFile, keyFile: keyFile, log: log}
	seen, err := r.stat()
	if err != nil {
		return nil, err
	}
	cert, err := r.load()
	if err != nil {
		return nil, err
	}
	r.seen = seen
	r.cert.Store(cert)
	r.warnValidity(cert)
	return r, nil
}

// stat reads both files' identities.
func (r *CertReloader) stat() ([2]os.FileInfo, error) {
	var out [2]os.FileInfo
	for i, f := range [2]struct{ name, path string }{{"HSRCPAY_TLS_CERT_FILE", r.certFile}, {"HSRCPAY_TLS_KEY_FILE", r.keyFile}} {
		fi, err := os.Stat(f.path)
		if err != nil {
			return out, fmt.Errorf("%s: %w", f.name, err)
		}
		out[i] = fi
	}
	return out, nil
}

// load reads and checks the pair.
func (r *CertReloader) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		// The standard library's messages name the problem ("private key
		// does not match public key", "failed to find any PEM data in
		// certificate input"), never the key itself.
		return nil, fmt.Errorf("HSRCPAY_TLS_CERT_FILE=%q and HSRCPAY_TLS_KEY_FILE=%q: not a usable certificate and key pair: %w", r.certFile, r.keyFile, err)
	}
	if cert.Leaf == nil { // Go fills it in; parse it if a future one does not
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("HSRCPAY_TLS_CERT_FILE=%q: %w", r.certFile, err)
		}
	}
	return &cert, nil
}

func (r *CertReloader) warnValidity(cert *tls.Certificate) {
	now := time.Now()
	switch {
	case now.After(cert.Leaf.NotAfter):
		r.log.Warn("the TLS certificate has expired: clients will refuse it", "file", r.certFile, "not_after", cert.Leaf.NotAfter)
	case now.Before(cert.Leaf.NotBefore):
		r.log.Warn("the TLS certificate is not valid yet: clients will refuse it", "file", r.certFile, "not_before", cert.Leaf.NotBefore)
	}
}

// Certificate is the pair handshakes get now.
func (r *CertReloader) Certificate() *tls.Certificate { return r.cert.Load() }

// GetCertificate is tls.Config.GetCertificate: the current pair, with no
// file access on the handshake's path.
func (r *CertReloader) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return r.cert.Load(), nil
}

// Check loads the pair again when either file changed since it was last
// loaded or tried (replaced by a rename, as cert-manager and most tools do,
// or rewritten in place). reloaded: a new pair is served; err: the files
// changed but could not be loaded (the previous pair is still served).
func (r *CertReloader) Check() (reloaded bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now, err := r.stat()
	if err != nil {
		// A file missing for a moment (a tool that deletes, then writes):
		// nothing recorded, so its return is a change.
		return false, err
	}
	if same(r.seen[0], now[0]) && same(r.seen[1], now[1]) {
		return false, nil
	}
	// Recorded whether or not it loads: a bad pair is reported once, not
	// at every poll, and any later change to either file is tried again.
	r.seen = now
	cert, err := r.load()
	if err != nil {
		return false, err
	}
	r.cert.Store(cert)
	r.warnValidity(cert)
	return true, nil
}

func same(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}

// Run checks the files every interval until ctx ends, logging each reload
// (with the new certificate's expiry) and each failure.
func (r *CertReloader) Run(ctx context.Context, every time.Duration) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		reloaded, err := r.Check()
		if err != nil {
			// A missing file fails every poll until it is back: said once.
			// A pair that does not load is returned once per change anyway.
			if msg := err.Error(); msg != lastErr || !errors.Is(err, os.ErrNotExist) {
				r.log.Error("TLS certificate reload failed; still serving the previous certificate", "err", err)
				lastErr = msg
			}
			continue
		}
		lastErr = ""
		if reloaded {
			leaf := r.cert.Load().Leaf
			r.log.Info("TLS certificate reloaded", "file", r.certFile, "subject", leaf.Subject.String(), "serial", leaf.SerialNumber.String(), "not_after", leaf.NotAfter)
		}
	}
}

// TLSConfig is the API listener's: TLS 1.2 and up with Go's default cipher
// suites and curves (Go picks only AEAD suites with forward secrecy for
// TLS 1.2 by default), the reloader's certificate, and HTTP/2 offered
// first. http.Server.ServeTLS keeps HTTP/2 on with this config.
func (r *CertReloader) TLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		GetCertificate: r.GetCertificate,
		NextProtos:     []string{"h2", "http/1.1"},
	}
}
