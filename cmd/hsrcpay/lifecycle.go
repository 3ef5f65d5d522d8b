package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/spf13/cobra"
)

const listHelp = `Lists the account's keys in the token's mode (live or sandbox), oldest first,
fetching every page. Keys show a hint of their secret (e.g. sk_test_…3kP9),
never the secret. Deleted keys are left out unless --deleted. The token needs
account:api:key:read.`

const getHelp = `Shows one key of the token's account and mode, deleted or not, with a hint of
its secret (never the secret). The token needs account:api:key:read.`

const updateHelp = `Changes the fields given (at least one); the others keep their values. The
key must hold no permission the token lacks. A managed key's name and expiry
cannot change. The token needs account:api:key:update.`

const disableHelp = `Switches a key off at once (status INACTIVE): its secret stops authenticating
on every replica, but the key and its name remain. 'hsrcpay keys enable'
switches it back on (status ACTIVE). Both are 'keys update --status'. The token
needs account:api:key:update.`

const enableHelp = `Switches a disabled key back on (status ACTIVE); 'hsrcpay keys disable'
switches it off (status INACTIVE). Both are 'keys update --status'. The token
needs account:api:key:update.`

const deleteHelp = `Revokes a custom key for good: its secret (and any previous secret still in a
grace period) stops authenticating at once, and its name is free again. There
is no undo; 'keys disable' is the reversible way. Managed keys are never
deleted: rotate them with 'keys regenerate'. Deleting a key that is already
deleted succeeds and shows it. The token needs account:api:key:delete.`

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

func (o *optBool) Type() string { return "true|false" }

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

// limitFlag registers --limit, the page size.
func limitFlag(c *cobra.Command, limit *int, what string) {
	c.Flags().IntVar(limit, "limit", 0, what+" fetched per request, 1 to 100 (default 20); every\npage is listed whatever the size")
}

// checkLimit checks a page size that was given.
func checkLimit(c *cobra.Command, limit int) error {
	if c.Flags().Changed("limit") && (limit < 1 || limit > 100) {
		return fmt.Errorf("--limit %d: want 1 to 100", limit)
	}
	return nil
}

func (a *app) listCmd() *cobra.Command {
	var (
		account, status, typ, createdBy string
		managed                         optBool
		deleted, asJSON                 bool
		limit                           int
	)
	c := &cobra.Command{
		Use:     "list --account ID [--status STATUS] [--type TYPE] [--managed true|false] [--created-by ID] [--deleted] [--limit N] [--json]",
		Short:   "list an account's keys (every page)",
		Long:    listHelp,
		Example: "  hsrcpay keys list --account acct_demo --status active --managed false",
	}
	f := c.Flags()
	f.StringVar(&account, "account", "", "account whose keys are listed (required)")
	f.StringVar(&status, "status", "", "only keys with this status: active, inactive or expired\n(expired: an active key past its expiry)")
	f.StringVar(&typ, "type", "", "only secret or only publishable keys")
	f.Var(&managed, "managed", "only managed (true) or only custom (false) keys")
	f.StringVar(&createdBy, "created-by", "", "only keys created by this key id, JWT subject, or bootstrap")
	f.BoolVar(&deleted, "deleted", false, "list deleted keys only")
	limitFlag(c, &limit, "keys")
	jsonFlag(c, &asJSON, "print one JSON array of the keys")
	completeValues(c, "status", "active", "inactive", "expired")
	completeValues(c, "type", "secret", "publishable")
	completeValues(c, "managed", "true", "false")
	c.RunE = func(c *cobra.Command, pos []string) error {
		const cmd = "hsrcpay keys list"
		stderr := a.stderr
		if code, ok := noArgs(stderr, cmd, pos); !ok {
			return exit(code)
		}
		if account == "" {
			return exit(usageError(stderr, cmd, "--account is required"))
		}
		opts := client.ListAPIKeysOptions{Managed: managed.v, CreatedBy: createdBy, Deleted: deleted, Limit: limit}
		if status != "" {
			s, err := oneOf("status", status, string(client.StatusActive), string(client.StatusInactive), string(client.StatusExpired))
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			opts.Status = client.KeyStatus(s)
		}
		if typ != "" {
			s, err := oneOf("type", typ, string(client.TypeSecret), string(client.TypePublishable))
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			opts.Type = client.KeyType(s)
		}
		if err := checkLimit(c, limit); err != nil {
			return exit(usageError(stderr, cmd, err.Error()))
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		// Every page first: a failure half-way prints nothing but the error.
		keys, err := client.Collect(cl.ListAPIKeys(ctx, account, opts))
		if err != nil {
			return exit(reportError(stderr, cmd, a.conn.apiURL, err))
		}
		if asJSON {
			if keys == nil {
				keys = []client.APIKeyView{}
			}
			return exit(printJSON(a.stdout, stderr, keys))
		}
		return exit(printKeyTable(a.stdout, stderr, keys))
	}
	return c
}

func (a *app) getCmd() *cobra.Command {
	return a.oneKeyCmd("get", "show one key (never its secret)", getHelp, "API key",
		func(ctx context.Context, cl *client.Client, id string) (*client.APIKeyView, error) {
			return cl.GetAPIKey(ctx, id)
		})
}

// oneKeyCmd is a command that does one thing to one key (get, disable,
// enable, delete) and prints the key as it then is.
func (a *app) oneKeyCmd(verb, short, long, title string, do func(context.Context, *client.Client, string) (*client.APIKeyView, error)) *cobra.Command {
	var asJSON bool
	c := &cobra.Command{Use: verb + " [--json] KEY_ID", Short: short, Long: long}
	jsonFlag(c, &asJSON, "print the API key object as JSON")
	c.RunE = func(_ *cobra.Command, pos []string) error {
		cmd := "hsrcpay keys " + verb
		stderr := a.stderr
		id, code, ok := keyIDArg(stderr, cmd, pos)
		if !ok {
			return exit(code)
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		key, err := do(ctx, cl, id)
		if err != nil {
			return exit(reportError(stderr, cmd, a.conn.apiURL, err))
		}
		return exit(printKeyView(a.stdout, stderr, asJSON, title, key))
	}
	return c
}

func (a *app) updateCmd() *cobra.Command {
	var (
		name, status, expiresAt string
		clearMeta, asJSON       bool
		metaFlags, allowFlags   []string
		allowAny                bool
		rateLimit               string
		credits, refill         string
		addCredits              int64
	)
	c := &cobra.Command{
		Use:     "update [--name NAME] [--metadata KEY=VALUE ... | --clear-metadata] [--status active|inactive] [--expires-at RFC3339] [--allow CIDR ... | --allow-any] [--rate-limit N/WINDOW] [--credits N [--refill AMOUNT/INTERVAL] | --add-credits N] [--json] KEY_ID",
		Short:   "change a key's name, metadata, status, expiry, networks, rate limit or credits",
		Long:    updateHelp,
		Example: `  hsrcpay keys update --name "Checkout backend (old)" --metadata team=checkout key_…`,
	}
	f := c.Flags()
	f.StringVar(&name, "name", "", "a new display name, unique among the account's active keys")
	f.StringArrayVar(&metaFlags, "metadata", nil, "set the metadata pair `KEY=VALUE`; repeat it for more. Replaces the whole\nmetadata map: pairs not given are removed")
	f.BoolVar(&clearMeta, "clear-metadata", false, "remove all metadata")
	f.StringVar(&status, "status", "", "active or inactive: inactive switches the key off at once; active switches\nit back on (see also 'keys disable' and 'keys enable')")
	f.StringVar(&expiresAt, "expires-at", "", "an earlier expiry, RFC 3339 (e.g. 2030-01-01T00:00:00Z);\nit can only move earlier, and must be in the future")
	allowFlag(c, &allowFlags)
	f.BoolVar(&allowAny, "allow-any", false, "lift the key's network restriction: it works from any address again")
	rateLimitFlag(c, &rateLimit)
	creditsFlags(c, &credits, &refill)
	f.Int64Var(&addCredits, "add-credits", 0, "add `N` to the credits a key with credits has left (in one transaction)")
	jsonFlag(c, &asJSON, "print the API key object as JSON")
	completeValues(c, "status", "active", "inactive")
	c.RunE = func(c *cobra.Command, pos []string) error {
		const cmd = "hsrcpay keys update"
		stderr := a.stderr
		id, code, ok := keyIDArg(stderr, cmd, pos)
		if !ok {
			return exit(code)
		}
		given := c.Flags().Changed
		var req client.UpdateAPIKeyRequest
		if given("name") {
			if name == "" {
				return exit(usageError(stderr, cmd, "--name must not be empty"))
			}
			req.Name = &name
		}
		switch {
		case len(metaFlags) > 0 && clearMeta:
			return exit(usageError(stderr, cmd, "--metadata and --clear-metadata exclude each other"))
		case len(metaFlags) > 0:
			md, err := parseMetadata(metaFlags)
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			req.Metadata = &md
		case clearMeta:
			req.Metadata = &client.Metadata{}
		}
		if given("status") {
			s, err := oneOf("status", status, "ACTIVE", "INACTIVE")
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			req.Status = client.Ptr(client.UpdateStatus(s))
		}
		if given("expires-at") {
			t, err := time.Parse(time.RFC3339, expiresAt)
			if err != nil {
				return exit(usageError(stderr, cmd, fmt.Sprintf("--expires-at %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", expiresAt)))
			}
			req.ExpiresAt = &t
		}
		switch {
		case len(allowFlags) > 0 && allowAny:
			return exit(usageError(stderr, cmd, "--allow and --allow-any exclude each other"))
		case len(allowFlags) > 0:
			req.AllowedNetworks = &allowFlags
		case allowAny:
			req.AllowedNetworks = &[]string{}
		}
		if given("rate-limit") {
			rl, err := parseRateLimit(rateLimit)
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			req.RateLimit = rl
		}
		switch {
		case given("credits") && given("add-credits"):
			return exit(usageError(stderr, cmd, "give --credits or --add-credits, not both"))
		case given("credits"):
			cr, err := parseCredits(credits, refill)
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			req.Credits = cr
		case given("refill"):
			return exit(usageError(stderr, cmd, "--refill needs --credits (the refill is set with what is left)"))
		case given("add-credits"):
			req.CreditsAdd = &addCredits
		}
		if req == (client.UpdateAPIKeyRequest{}) {
			return exit(usageError(stderr, cmd, "nothing to change: give --name, --metadata, --clear-metadata, --status, --expires-at, --allow, --allow-any, --rate-limit, --credits or --add-credits"))
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		key, err := cl.UpdateAPIKey(ctx, id, req)
		if err != nil {
			return exit(reportError(stderr, cmd, a.conn.apiURL, err))
		}
		return exit(printKeyView(a.stdout, stderr, asJSON, "Updated API key", key))
	}
	return c
}

// switchCmd is keys disable and keys enable.
func (a *app) switchCmd(verb string) *cobra.Command {
	short, long, title, req := "switch a key off at once (status INACTIVE)", disableHelp, "Disabled API key", client.Disable()
	if verb == "enable" {
		short, long, title, req = "switch a disabled key back on (status ACTIVE)", enableHelp, "Enabled API key", client.Enable()
	}
	return a.oneKeyCmd(verb, short, long, title,
		func(ctx context.Context, cl *client.Client, id string) (*client.APIKeyView, error) {
			return cl.UpdateAPIKey(ctx, id, req)
		})
}

func (a *app) deleteCmd() *cobra.Command {
	return a.oneKeyCmd("delete", "revoke a custom key for good", deleteHelp, "Deleted API key",
		func(ctx context.Context, cl *client.Client, id string) (*client.APIKeyView, error) {
			return cl.DeleteAPIKey(ctx, id)
		})
}
