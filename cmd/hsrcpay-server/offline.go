package main

import (
	"context"
	"encoding/json"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/hsrcpay/apikeys/server"
)

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

// issueOffline is what bootstrap and rotate-managed share: the store from the
// configuration, the use case, and the secrets it issued printed once (exit
// 0), or the error (exit 1; 2 for a bad configuration).
func issueOffline(cmd string, lookup func(string) (string, bool), stdout, stderr io.Writer, run func(context.Context, *apikeys.Service) ([]apikeys.Issued, error)) int {
	cfg, code := loadConfig(lookup, stderr)
	if code != 0 {
		return code
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ann, err := newAnnouncer(cfg)
	if err != nil { // config.Load checked the URL already
		eprintf(stderr, "hsrcpay-server %s: %v\n", cmd, err)
		return 2
	}
	// After the keys are printed (or the command failed): the announcements
	// leave, bounded, before the process does.
	defer ann.finish(cmd, stderr)
	svc, closeFn, err := offlineService(ctx, cfg, ann.changed)
	if err == nil {
		defer closeFn()
		var issued []apikeys.Issued
		if issued, err = run(ctx, svc); err == nil {
			err = printKeys(stdout, issued)
		}
	}
	if err != nil {
		eprintf(stderr, "hsrcpay-server %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// offlineService is the business layer without HTTP, for commands; changed
// hears of every key changed (apikeys.Options.Changed).
func offlineService(ctx context.Context, cfg config.Config, changed func(apikey.Mode, string)) (*apikeys.Service, func(), error) {
	spec, err := server.LoadSpec()
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	// The command's work is committed (or failed) when it closes the store.
	return apikeys.New(st, spec.Catalog, apikeys.Options{MaxActiveKeys: cfg.MaxActiveKeys, Changed: changed}), func() { _ = st.Close() }, nil
}
