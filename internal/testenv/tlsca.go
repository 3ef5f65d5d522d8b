package testenv

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"testing"
	"time"
)

// TLSCA is a certificate authority of the test's own: an ECDSA P-256
// self-signed CA that signs server certificates for 127.0.0.1, so that TLS
// tests (in-process and of the real binary) trust only what they made.
type TLSCA struct {
	Cert *x509.Certificate
	Pool *x509.CertPool // holds Cert only
	key  *ecdsa.PrivateKey
}

// NewTLSCA makes a CA valid from an hour ago for a day.
func NewTLSCA(t testing.TB) *TLSCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "hsrcpay test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &TLSCA{Cert: cert, Pool: pool, key: key}
}

// Leaf makes a server certificate for 127.0.0.1 and localhost with the given
// serial number (so a test can tell which one is served): the PEM of the
// certificate and of its key (PKCS #8).
func (ca *TLSCA) Leaf(t testing.TB, serial int64) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})
}

// WriteLeaf writes a new leaf (Leaf) into certFile and keyFile, each
// replaced by rename, key first, as cert-manager and most tools do: a reader
// never sees half a file.
func (ca *TLSCA) WriteLeaf(t testing.TB, serial int64, certFile, keyFile string) {
	t.Helper()
	certPEM, keyPEM := ca.Leaf(t, serial)
	ReplaceFile(t, keyFile, keyPEM)
	ReplaceFile(t, certFile, certPEM)
}

// ReplaceFile swaps in new contents by rename (mode 0600).
func ReplaceFile(t testing.TB, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// ServedSerial dials addr with a fresh TLS session (no resumption, which
// would keep the old certificate), trusting pool only, and returns the
// serial number of the leaf served.
func ServedSerial(t testing.TB, addr string, pool *x509.CertPool) int64 {
	t.Helper()
	d := tls.Dialer{Config: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	c, err := d.DialContext(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("TLS dial %s: %v", addr, err)
	}
	defer func() { _ = c.Close() }() // a probe
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.Int64()
}
