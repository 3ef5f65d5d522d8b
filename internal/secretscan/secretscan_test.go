package secretscan_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/internal/secretscan"
)

func signer(t *testing.T, id string) secretscan.Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return secretscan.Signer{ID: id, Key: k}
}

func doc(t *testing.T, s ...secretscan.Signer) []byte {
	t.Helper()
	b, err := secretscan.DocumentOf(s...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t *testing.T, s secretscan.Signer, body []byte) string {
	t.Helper()
	sig, err := s.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestVerifyFromFile(t *testing.T) {
	a, b := signer(t, "a"), signer(t, "b")
	file := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(file, doc(t, a, b), 0o600); err != nil {
		t.Fatal(err)
	}
	keys, err := secretscan.Load(context.Background(), secretscan.Config{File: file})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[{"token":"x","type":"t"}]`)
	for _, s := range []secretscan.Signer{a, b} { // a key that is not current still counts
		if err := keys.Verify(context.Background(), s.ID, sign(t, s, body), body); err != nil {
			t.Fatalf("%s: %v", s.ID, err)
		}
	}
	for name, c := range map[string]struct {
		id, sig string
		body    []byte
		want    error
	}{
		"no id":           {"", sign(t, a, body), body, secretscan.ErrMissing},
		"no signature":    {"a", "", body, secretscan.ErrMissing},
		"not base64":      {"a", "!!", body, secretscan.ErrMalformed},
		"unknown id":      {"c", sign(t, a, body), body, secretscan.ErrUnknownKey},
		"other key":       {"a", sign(t, b, body), body, secretscan.ErrBadSig},
		"body changed":    {"a", sign(t, a, body), append([]byte(" "), body...), secretscan.ErrBadSig},
		"not ASN.1 ECDSA": {"a", "AAAA", body, secretscan.ErrBadSig},
	} {
		if err := keys.Verify(context.Background(), c.id, c.sig, c.body); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

func TestLoadRefusesBadDocuments(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	edPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der384, err := x509.MarshalPKIXPublicKey(&p384.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	p384PEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der384}))
	for name, body := range map[string]string{
		"not JSON": "nope",
		"no keys":  `{"public_keys":[]}`,
		"no id":    `{"public_keys":[{"key_identifier":"","key":"x"}]}`,
		"not PEM":  `{"public_keys":[{"key_identifier":"a","key":"x"}]}`,
		"Ed25519":  `{"public_keys":[{"key_identifier":"a","key":` + jsonString(edPEM) + `}]}`,
		"P-384":    `{"public_keys":[{"key_identifier":"a","key":` + jsonString(p384PEM) + `}]}`,
	} {
		if _, err := secretscan.Parse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := secretscan.Load(context.Background(), secretscan.Config{}); err == nil {
		t.Error("neither file nor URL: accepted")
	}
	if _, err := secretscan.Load(context.Background(), secretscan.Config{File: "x", URL: "http://x"}); err == nil {
		t.Error("both file and URL: accepted")
	}
}

func jsonString(s string) string {
	out := []byte{'"'}
	for _, c := range []byte(s) {
		if c == '\n' {
			out = append(out, '\\', 'n')
			continue
		}
		out = append(out, c)
	}
	return string(append(out, '"'))
}

// A URL is re-read when a report names an unknown key id (GitHub rotated),
// at most once per MinRefetch however many forged ids arrive, and every
// Refresh by Run.
func TestURLRefetchAndRefresh(t *testing.T) {
	a, b := signer(t, "a"), signer(t, "b")
	var mu sync.Mutex
	published := doc(t, a)
	var gets atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		gets.Add(1)
		mu.Lock()
		defer mu.Unlock()
		_, _ = w.Write(published)
	}))
	defer srv.Close()
	var clock atomic.Int64
	clock.Store(time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	keys, err := secretscan.Load(context.Background(), secretscan.Config{URL: srv.URL, MinRefetch: time.Minute, Refresh: 20 * time.Millisecond, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`[]`)
	if gets.Load() != 1 {
		t.Fatalf("%d GETs at load", gets.Load())
	}
	// GitHub starts signing with b: within MinRefetch of the load, unknown.
	mu.Lock()
	published = doc(t, a, b)
	mu.Unlock()
	if err := keys.Verify(context.Background(), "b", sign(t, b, body), body); !errors.Is(err, secretscan.ErrUnknownKey) {
		t.Fatalf("b before MinRefetch: %v", err)
	}
	if gets.Load() != 1 {
		t.Fatal("re-read inside MinRefetch")
	}
	clock.Add(int64(time.Minute))
	if err := keys.Verify(context.Background(), "b", sign(t, b, body), body); err != nil {
		t.Fatalf("b after MinRefetch: %v", err)
	}
	for i := 0; i < 20; i++ { // forged ids: refused, and no more requests to GitHub
		if err := keys.Verify(context.Background(), "forged", sign(t, b, body), body); !errors.Is(err, secretscan.ErrUnknownKey) {
			t.Fatalf("forged id, try %d: %v, want %v", i, err, secretscan.ErrUnknownKey)
		}
	}
	if gets.Load() != 2 {
		t.Fatalf("%d GETs, want 2", gets.Load())
	}
	// Run re-reads periodically.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { keys.Run(ctx); close(done) }()
	deadline := time.Now().Add(5 * time.Second)
	for gets.Load() < 4 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	if gets.Load() < 4 {
		t.Fatalf("Run re-read %d times", gets.Load()-2)
	}
}
