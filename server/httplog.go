package server

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// HTTPErrorLog is an http.Server's ErrorLog that writes to the server's
// JSON log instead of plain text on stderr: a failed TLS handshake (port
// scanners, clients offering TLS 1.1 or distrusting the certificate, load
// balancers' TCP checks) at DEBUG, as it comes from outside and proves
// nothing wrong here; anything else net/http reports (accept errors, a
// handler's panic it recovered) at WARN.
func HTTPErrorLog(l *slog.Logger) *log.Logger {
	return log.New(httpErrorWriter{l}, "", 0)
}

type httpErrorWriter struct{ log *slog.Logger }

func (w httpErrorWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	level := slog.LevelWarn
	if strings.Contains(msg, "TLS handshake error") {
		level = slog.LevelDebug
	}
	// No request context reaches net/http's error log.
	w.log.Log(context.Background(), level, "http server error", "err", msg)
	return len(p), nil
}
