package main

import (
	"bytes"
	"encoding/base64"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/server"
)

// TestIdempotencyKeyFile: with sqlite:DIR and no file named, DIR.idempotency.key
// is created once (0600) and read back the same; a named file must exist;
// PostgreSQL without a file has no key.
func TestIdempotencyKeyFile(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	dir := filepath.Join(t.TempDir(), "data")
	cfg := config.Defaults()
	cfg.DatabaseURL = "sqlite:" + dir + "/"
	k1, err := idempotencyKey(cfg, log)
	if err != nil || len(k1) != server.IdempotencyKeySize {
		t.Fatalf("first start: %d bytes, %v", len(k1), err)
	}
	path := dir + ".idempotency.key"
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file %s: %v %v; want mode 0600", path, fi, err)
	}
	k2, err := idempotencyKey(cfg, log)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second start read another key: %v", err)
	}

	cfg.DatabaseURL = "postgres://u@127.0.0.1:5432/db"
	if k, err := idempotencyKey(cfg, log); err != nil || k != nil {
		t.Fatalf("PostgreSQL without a file: %v %v; want no key", k, err)
	}
	cfg.IdempotencyKeyFile = filepath.Join(t.TempDir(), "missing.key")
	if _, err := idempotencyKey(cfg, log); err == nil || !strings.Contains(err.Error(), "HSRCPAY_IDEMPOTENCY_KEY_FILE") {
		t.Fatalf("a named file that does not exist: %v; want an error naming the variable", err)
	}
	cfg.IdempotencyKeyFile = path
	if k, err := idempotencyKey(cfg, log); err != nil || !bytes.Equal(k, k1) {
		t.Fatalf("the named file: %v", err)
	}
}

func TestLoadIdempotencyKeyFormats(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for name, content := range map[string][]byte{
		"raw":            key,
		"base64":         []byte(base64.StdEncoding.EncodeToString(key) + "\n"),
		"base64 raw url": []byte("  " + base64.RawURLEncoding.EncodeToString(key) + "  "),
	} {
		p := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		got, created, err := server.LoadIdempotencyKey(p, false)
		if err != nil || created || !bytes.Equal(got, key) {
			t.Errorf("%s: %x %v %v", name, got, created, err)
		}
	}
	for name, content := range map[string][]byte{
		"short":      key[:16],
		"base64 16":  []byte(base64.StdEncoding.EncodeToString(key[:16])),
		"not base64": []byte(strings.Repeat("!", 44)),
		"empty":      nil,
	} {
		p := filepath.Join(t.TempDir(), "k")
		if err := os.WriteFile(p, content, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := server.LoadIdempotencyKey(p, true); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
