package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// lockedLog collects a process's stderr (JSON log lines).
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// line returns the first log line whose msg is msg, decoded (nil: none yet).
func (l *lockedLog) line(msg string) map[string]any {
	for _, s := range strings.Split(l.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(s), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	return nil
}

// launch runs `bin serve` with env on a free port, collecting its stderr,
// and waits for its "listening" line. It returns the demo account's export
// lines (when HSRCPAY_DEMO_ACCOUNT is in env) and the log.
func launch(t *testing.T, bin string, env ...string) (map[string]string, *lockedLog) {
	t.Helper()
	cmd := exec.CommandContext(context.Background(), bin, "serve")
	cmd.Env = append(append(os.Environ(), "HSRCPAY_ADDR=127.0.0.1:0", "HSRCPAY_METRICS_ADDR=127.0.0.1:0", "HSRCPAY_LOG_LEVEL=info"), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedLog{}
	copied := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			logs.mu.Lock()
			logs.b.Write(sc.Bytes())
			logs.b.WriteByte('\n')
			logs.mu.Unlock()
		}
		close(copied)
	}()
	exports := make(chan [2]string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && strings.HasPrefix(sc.Text(), "export ") {
				exports <- [2]string{k, v}
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill() // fails only if it has exited already
		_ = cmd.Wait()         // killed: the error says so
		<-copied
	})
	deadline := time.Now().Add(30 * time.Second)
	vars := map[string]string{}
	if strings.Contains(strings.Join(env, " "), "HSRCPAY_DEMO_ACCOUNT=") {
		for len(vars) < 5 {
			select {
			case kv := <-exports:
				vars[kv[0]] = kv[1]
			case <-time.After(time.Until(deadline)):
				t.Fatalf("the demo account's export lines did not come within 30s:\n%s", logs.String())
			}
		}
	}
	for logs.line("listening") == nil {
		if time.Now().After(deadline) {
			t.Fatalf("no listening line within 30s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return vars, logs
}

// TestTLSServe runs the real binary with HSRCPAY_TLS_*: the demo account's
// URL is https; the Go client, trusting only the test's CA, creates a key;
// HTTP/2 is negotiated; TLS 1.1 and plain HTTP are refused; the metrics
// listener stays plain HTTP; a new leaf replacing the files is served
// without a restart, and a broken one is logged while the last good one
// stays served.
func TestTLSServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	ca := testenv.NewTLSCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WriteLeaf(t, 1001, certFile, keyFile)
	const every = 100 * time.Millisecond
	vars, logs := launch(t, bin, "HSRCPAY_DATABASE_URL=sqlite:"+t.TempDir(), "HSRCPAY_DEMO_ACCOUNT=acct_tls",
		"HSRCPAY_TLS_CERT_FILE="+certFile, "HSRCPAY_TLS_KEY_FILE="+keyFile, "HSRCPAY_TLS_RELOAD_INTERVAL="+every.String())
	start := logs.line("listening")
	if start["tls"] != true {
		t.Errorf("listening line: tls %v, want true: %v", start["tls"], start)
	}
	addr, _ := start["addr"].(string)
	base := vars["HSRCPAY_API_URL"]
	if base != "https://"+addr+"/v1" {
		t.Fatalf("demo URL %q, want https://%s/v1", base, addr)
	}

	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}, ForceAttemptHTTP2: true,
	}}
	c, err := client.New(base, vars["HSRCPAY_API_KEY"], client.WithHTTPClient(hc), client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateAPIKey(context.Background(), "acct_tls", client.CreateAPIKeyRequest{Name: "over tls", Permissions: client.Permissions{}}); err != nil {
		t.Fatalf("create over HTTPS: %v", err)
	}
	req, _ := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+addr+"/healthz", nil)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	_ = res.Body.Close() // read to its end
	if res.StatusCode != 200 || res.ProtoMajor != 2 {
		t.Fatalf("healthz over HTTPS: %d %s, want 200 over HTTP/2", res.StatusCode, res.Proto)
	}

	// TLS 1.1 is refused, and so is plain HTTP on the TLS port.
	d := tls.Dialer{Config: &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}} //nolint:gosec // TLS 1.1 offered on purpose, to see it refused
	if conn, err := d.DialContext(context.Background(), "tcp", addr); err == nil {
		_ = conn.Close() // it should not have connected
		t.Error("a TLS 1.1 handshake succeeded")
	}
	if res, _ := httpGet(t, "http://"+addr+"/healthz"); res.StatusCode == 200 { //nolint:bodyclose // httpGet reads and closes the body
		t.Error("plain HTTP answered 200 on the TLS port")
	}
	// The metrics listener stays plain HTTP.
	maddr, _ := start["metrics_addr"].(string)
	if res, body := httpGet(t, "http://"+maddr+"/metrics"); res.StatusCode != 200 || !strings.Contains(body, "hsrcpay_build_info{") { //nolint:bodyclose // httpGet reads and closes the body
		t.Errorf("metrics over plain HTTP: %d", res.StatusCode)
	}

	// A new leaf: served without a restart.
	if got := testenv.ServedSerial(t, addr, ca.Pool); got != 1001 {
		t.Fatalf("served serial %d, want 1001", got)
	}
	ca.WriteLeaf(t, 1002, certFile, keyFile)
	changed := time.Now()
	for testenv.ServedSerial(t, addr, ca.Pool) != 1002 {
		if time.Since(changed) > 20*time.Second { // generous against a loaded machine; the figure is logged
			t.Fatalf("the new certificate was not served within 20s (poll every %s):\n%s", every, logs.String())
		}
		time.Sleep(every / 5)
	}
	t.Logf("new certificate served %s after the files changed (poll every %s)", time.Since(changed).Round(time.Millisecond), every)
	if logs.line("TLS certificate reloaded") == nil {
		t.Errorf("no reload logged:\n%s", logs.String())
	}
	// A broken replacement: logged, the last good pair still served.
	if err := os.WriteFile(certFile, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for logs.line("TLS certificate reload failed; still serving the previous certificate") == nil {
		if time.Now().After(deadline) {
			t.Fatalf("a broken certificate file was not reported:\n%s", logs.String())
		}
		time.Sleep(every / 5)
	}
	if got := testenv.ServedSerial(t, addr, ca.Pool); got != 1002 {
		t.Fatalf("served serial %d after a broken replacement, want 1002", got)
	}
}

// TestTLSRefusedAtStart: one TLS file without the other is a configuration
// error (exit 2) naming both; a pair that does not load stops the server
// (exit 1) saying why, before the port is bound or the demo keys rotated.
func TestTLSRefusedAtStart(t *testing.T) {
	ca := testenv.NewTLSCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WriteLeaf(t, 1, certFile, keyFile)
	otherCert, otherKey := filepath.Join(dir, "other.crt"), filepath.Join(dir, "other.key")
	ca.WriteLeaf(t, 2, otherCert, otherKey)
	t.Setenv("HSRCPAY_DATABASE_URL", "sqlite:"+t.TempDir())
	t.Setenv("HSRCPAY_ADDR", "127.0.0.1:0")
	t.Setenv("HSRCPAY_METRICS_ADDR", "")
	t.Setenv("HSRCPAY_DEMO_ACCOUNT", "acct_tls_refused")
	t.Setenv("HSRCPAY_LOG_LEVEL", "error")
	for _, tc := range []struct {
		what      string
		cert, key string
		code      int
		want      []string
	}{
		{"a certificate without its key", certFile, "", 2, []string{"HSRCPAY_TLS_CERT_FILE", "HSRCPAY_TLS_KEY_FILE", "set both"}},
		{"a key without its certificate", "", keyFile, 2, []string{"HSRCPAY_TLS_CERT_FILE", "HSRCPAY_TLS_KEY_FILE", "set both"}},
		{"a key of another certificate", certFile, otherKey, 1, []string{"not a usable certificate and key pair", "private key does not match public key"}},
		{"a missing key file", certFile, filepath.Join(dir, "nope.key"), 1, []string{"HSRCPAY_TLS_KEY_FILE", "no such file"}},
		{"a certificate file holding a key", keyFile, keyFile, 1, []string{"HSRCPAY_TLS_CERT_FILE", "not a usable certificate and key pair"}},
	} {
		t.Setenv("HSRCPAY_TLS_CERT_FILE", tc.cert)
		t.Setenv("HSRCPAY_TLS_KEY_FILE", tc.key)
		var out, errb bytes.Buffer
		code := run([]string{"serve"}, &out, &errb)
		if code != tc.code {
			t.Errorf("%s: exit %d, want %d; stderr %q", tc.what, code, tc.code, errb.String())
		}
		wantAll(t, tc.what+": stderr", errb.String(), tc.want...)
		if strings.Contains(out.String(), "export HSRCPAY_API_KEY=") {
			t.Errorf("%s: demo keys printed although the server did not start", tc.what)
		}
		if strings.Contains(errb.String(), "PRIVATE KEY") {
			t.Errorf("%s: key material on stderr", tc.what)
		}
	}
}
