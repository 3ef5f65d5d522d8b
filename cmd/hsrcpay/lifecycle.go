package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

const listHelp = `Usage:
  hsrcpay keys list --account ID [--status STATUS] [--type TYPE] [--managed true|false]
                    [--created-by ID] [--deleted] [--limit N] [--json]

Lists the account's keys in the token's mode (live or sandbox), oldest first,
fetching every page. Keys show a hint of their secret (e.g. sk_test_…3kP9),
never the secret. Deleted keys are left out unless --deleted. The token needs
account:api:key:read.

Flags:
  --account ID          account whose keys are listed (required)
  --status STATUS       only keys with this status: active, inactive or expired
                        (expired: an active key past its expiry)
  --type TYPE           only secret or only publishable keys
  --managed true|false  only managed (true) or only custom (false) keys
  --created-by ID       only keys created by this key id, JWT subject, or bootstrap
  --deleted             list deleted keys only
  --limit N             keys fetched per request, 1 to 100 (default 20); every
                        page is listed whatever the size
  --json                print one JSON array of the keys

` + connectionHelp + `
Example:
  hsrcpay keys list --account acct_demo --status active --managed false

` + exitCodesHelp

const getHelp = `Usage:
  hsrcpay keys get [--json] KEY_ID

Shows one key of the token's account and mode, deleted or not, with a hint of
its secret (never the secret). The token needs account:api:key:read.

Flags:
  --json  print the API key object as JSON

` + connectionHelp + `
` + exitCodesHelp

const updateHelp = `Usage:
  hsrcpay keys update [--name NAME] [--metadata KEY=VALUE ... | --clear-metadata]
                      [--status active|inactive] [--expires-at RFC3339] [--json] KEY_ID

Changes the fields given (at least one); the others keep their values. The
key must hold no permission the token lacks. A managed key's name and expiry
cannot change. The token needs account:api:key:update.

Flags:
  --name NAME               a new display name, unique among the account's active keys
  --metadata KEY=VALUE      a metadata pair; repeat it for more. Replaces the whole
                            metadata map: pairs not given are removed
  --clear-metadata          remove all metadata
  --status active|inactive  inactive switches the key off at once; active switches
                            it back on (see also 'keys disable' and 'keys enable')
  --expires-at TIME         an earlier expiry, RFC 3339 (e.g. 2030-01-01T00:00:00Z);
                            it can only move earlier, and must be in the future
  --json                    print the API key object as JSON

` + connectionHelp + `
Example:
  hsrcpay keys update --name "Checkout backend (old)" --metadata team=checkout key_…

` + exitCodesHelp

const disableHelp = `Usage:
  hsrcpay keys disable [--json] KEY_ID
  hsrcpay keys enable [--json] KEY_ID

disable switches a key off at once (status INACTIVE): its secret stops
authenticating on every replica, but the key and its name remain. enable
switches it back on (status ACTIVE). Both are 'keys update --status'. The token
needs account:api:key:update.

Flags:
  --json  print the API key object as JSON

` + connectionHelp + `
` + exitCodesHelp

const deleteHelp = `Usage:
  hsrcpay keys delete [--json] KEY_ID

Revokes a custom key for good: its secret (and any previous secret still in a
grace period) stops authenticating at once, and its name is free again. There
is no undo; 'keys disable' is the reversible way. Managed keys are never
deleted: rotate them with 'keys regenerate'. Deleting a key that is already
deleted succeeds and shows it. The token needs account:api:key:delete.

Flags:
  --json  print the API key object as JSON

` + connectionHelp + `
` + exitCodesHelp

// keyIDArg checks that pos is exactly one non-empty KEY_ID; ok is false when
// the command must stop with code (reported).
func keyIDArg(stderr io.Writer, cmd string, pos []string) (id string, code int, ok bool) {
	switch {
	case len(pos) == 0:
		return "", usageError(stderr, cmd, "missing KEY_ID"), false
	case len(pos) > 1:
		return "", usageError(stderr, cmd, fmt.Sprintf("one KEY_ID expected, got %d arguments", len(pos))), false
	case pos[0] == "":
		return "", usageError(stderr, cmd, "empty KEY_ID"), false
	}
	return pos[0], exitOK, true
}

// noArgs reports a positional argument to a flags-only command.
func noArgs(stderr io.Writer, cmd string, pos []string) (code int, ok bool) {
	if len(pos) > 0 {
		return usageError(stderr, cmd, fmt.Sprintf("unexpected argument %q (flags only)", pos[0])), false
	}
	return exitOK, true
}

// optBool is a flag that takes true or false as its value (--managed false)
// and remembers whether it was given.
type optBool struct{ v *bool }

func (o *optBool) String() string {
	if o == nil || o.v == nil {
		return ""
	}
	return strconv.FormatBool(*o.v)
}

func (o *optBool) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	o.v = &b
	return nil
}

// oneOf maps a case-insensitive flag value onto one of the spec's values.
func oneOf(flagName, v string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a, nil
		}
	}
	lower := make([]string, len(allowed))
	for i, a := range allowed {
		lower[i] = strings.ToLower(a)
	}
	return "", fmt.Errorf("--%s %q: want one of %s", flagName, v, strings.Join(lower, ", "))
}

// limitFlag checks a page size that was given.
func limitFlag(fs *flag.FlagSet, limit int) error {
	given := false
	fs.Visit(func(f *flag.Flag) { given = given || f.Name == "limit" })
	if given && (limit < 1 || limit > 100) {
		return fmt.Errorf("--limit %d: want 1 to 100", limit)
	}
	return nil
}

func listCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys list"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	account := fs.String("account", "", "")
	status := fs.String("status", "", "")
	typ := fs.String("type", "", "")
	var managed optBool
	fs.Var(&managed, "managed", "")
	createdBy := fs.String("created-by", "", "")
	deleted := fs.Bool("deleted", false, "")
	limit := fs.Int("limit", 0, "")
	pos, code, ok := parseOrExit(fs, args, listHelp, stdout, stderr)
	if !ok {
		return code
	}
	if code, ok := noArgs(stderr, cmd, pos); !ok {
		return code
	}
	if *account == "" {
		return usageError(stderr, cmd, "--account is required")
	}
	opts := client.ListAPIKeysOptions{Managed: managed.v, CreatedBy: *createdBy, Deleted: *deleted, Limit: *limit}
	if *status != "" {
		s, err := oneOf("status", *status, string(client.StatusActive), string(client.StatusInactive), string(client.StatusExpired))
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		opts.Status = client.KeyStatus(s)
	}
	if *typ != "" {
		s, err := oneOf("type", *typ, string(client.TypeSecret), string(client.TypePublishable))
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		opts.Type = client.KeyType(s)
	}
	if err := limitFlag(fs, *limit); err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	// Every page first: a failure half-way prints nothing but the error.
	keys, err := client.Collect(cl.ListAPIKeys(context.Background(), *account, opts))
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	if c.json {
		if keys == nil {
			keys = []client.APIKeyView{}
		}
		return printJSON(stdout, stderr, keys)
	}
	return printKeyTable(stdout, keys)
}

func getCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys get"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	pos, code, ok := parseOrExit(fs, args, getHelp, stdout, stderr)
	if !ok {
		return code
	}
	id, code, ok := keyIDArg(stderr, cmd, pos)
	if !ok {
		return code
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.GetAPIKey(context.Background(), id)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKeyView(stdout, stderr, c.json, "API key", key)
}

func updateCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys update"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	name := fs.String("name", "", "")
	status := fs.String("status", "", "")
	expiresAt := fs.String("expires-at", "", "")
	clearMeta := fs.Bool("clear-metadata", false, "")
	var metaFlags listFlag
	fs.Var(&metaFlags, "metadata", "")
	pos, code, ok := parseOrExit(fs, args, updateHelp, stdout, stderr)
	if !ok {
		return code
	}
	id, code, ok := keyIDArg(stderr, cmd, pos)
	if !ok {
		return code
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var req client.UpdateAPIKeyRequest
	if given["name"] {
		if *name == "" {
			return usageError(stderr, cmd, "--name must not be empty")
		}
		req.Name = name
	}
	switch {
	case len(metaFlags) > 0 && *clearMeta:
		return usageError(stderr, cmd, "--metadata and --clear-metadata exclude each other")
	case len(metaFlags) > 0:
		md, err := parseMetadata(metaFlags)
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		req.Metadata = &md
	case *clearMeta:
		req.Metadata = &client.Metadata{}
	}
	if given["status"] {
		s, err := oneOf("status", *status, "ACTIVE", "INACTIVE")
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		req.Status = client.Ptr(client.UpdateStatus(s))
	}
	if given["expires-at"] {
		t, err := time.Parse(time.RFC3339, *expiresAt)
		if err != nil {
			return usageError(stderr, cmd, fmt.Sprintf("--expires-at %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", *expiresAt))
		}
		req.ExpiresAt = &t
	}
	if req == (client.UpdateAPIKeyRequest{}) {
		return usageError(stderr, cmd, "nothing to change: give --name, --metadata, --clear-metadata, --status or --expires-at")
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.UpdateAPIKey(context.Background(), id, req)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKeyView(stdout, stderr, c.json, "Updated API key", key)
}

// switchCmd is keys disable and keys enable.
func switchCmd(verb string, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cmd := "hsrcpay keys " + verb
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	pos, code, ok := parseOrExit(fs, args, disableHelp, stdout, stderr)
	if !ok {
		return code
	}
	id, code, ok := keyIDArg(stderr, cmd, pos)
	if !ok {
		return code
	}
	req, title := client.Disable(), "Disabled API key"
	if verb == "enable" {
		req, title = client.Enable(), "Enabled API key"
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.UpdateAPIKey(context.Background(), id, req)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKeyView(stdout, stderr, c.json, title, key)
}

func deleteCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys delete"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	pos, code, ok := parseOrExit(fs, args, deleteHelp, stdout, stderr)
	if !ok {
		return code
	}
	id, code, ok := keyIDArg(stderr, cmd, pos)
	if !ok {
		return code
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.DeleteAPIKey(context.Background(), id)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKeyView(stdout, stderr, c.json, "Deleted API key", key)
}
