package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

const createHelp = `Usage:
  hsrcpay keys create --account ID --name NAME [--permission RESOURCE:ACTION ...]
                      [--expires-at RFC3339] [--metadata KEY=VALUE ...] [--json]

Creates a custom secret key on an account and prints it with its secret, which
is shown only this once. The token needs account:api:key:create and every
permission it grants.

Flags:
  --account ID                  account that will own the key (required)
  --name NAME                   display name, unique among the account's active keys (required)
  --permission RESOURCE:ACTION  a permission to grant; repeat it for more. Split at the
                                last colon: account:api:key:create is action "create"
                                on resource "account:api:key"
  --expires-at TIME             when the key stops working, RFC 3339
                                (e.g. 2030-01-01T00:00:00Z); default: never
  --metadata KEY=VALUE          a metadata pair; repeat it for more
  --json                        print the API key object as JSON

` + connectionHelp + `
Example:
  hsrcpay keys create --account acct_demo --name "Checkout backend" \
      --permission payment:create --permission payment:read --metadata team=checkout

` + exitCodesHelp

const regenerateHelp = `Usage:
  hsrcpay keys regenerate [--grace-period DURATION] [--json] KEY_ID

Rotates the secret of a managed key and prints the new secret, which is shown
only this once. The key id stays the same. The token needs
account:api:key:update.

Flags:
  --grace-period DURATION  keep the previous secret working this long beside the new
                           one (whole minutes, e.g. 30m or 24h; at most 168h);
                           default: it stops working at once
  --json                   print the API key object as JSON

` + connectionHelp + `
Example:
  hsrcpay keys regenerate --grace-period 1h "$HSRCPAY_KEY_ID"

` + exitCodesHelp

// conn holds the flags every API command has.
type conn struct {
	apiKey, apiURL string
	json           bool
}

func (c *conn) register(fs *flag.FlagSet) {
	// No defaults from the environment here: --help would print the token.
	fs.StringVar(&c.apiKey, "api-key", "", "")
	fs.StringVar(&c.apiURL, "api-url", "", "")
	fs.BoolVar(&c.json, "json", false, "")
}

// client builds the API client from the flags and the environment; code is
// exitUsage (already reported) when that is impossible.
func (c *conn) client(cmd string, getenv func(string) string, stderr io.Writer) (cl *client.Client, code int) {
	token := c.apiKey
	if token == "" {
		token = getenv("HSRCPAY_API_KEY")
	}
	if token == "" {
		return nil, usageError(stderr, cmd, "no API key: set HSRCPAY_API_KEY or pass --api-key")
	}
	if c.apiURL == "" {
		c.apiURL = getenv("HSRCPAY_API_URL")
	}
	if c.apiURL == "" {
		c.apiURL = defaultAPIURL
	}
	cl, err := client.New(c.apiURL, token, client.WithUserAgent("hsrcpay-cli"))
	if err != nil {
		return nil, usageError(stderr, cmd, strings.TrimPrefix(err.Error(), "client: "))
	}
	return cl, exitOK
}

// listFlag is a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ", ") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

// parsePermissions groups RESOURCE:ACTION strings by resource, splitting at
// the last colon (resources contain colons, actions do not).
func parsePermissions(list []string) (client.Permissions, error) {
	perms := client.Permissions{}
	for _, p := range list {
		i := strings.LastIndexByte(p, ':')
		if i <= 0 || i == len(p)-1 {
			return nil, fmt.Errorf("--permission %q: want RESOURCE:ACTION, e.g. account:api:key:create", p)
		}
		res, action := p[:i], p[i+1:]
		dup := false
		for _, a := range perms[res] {
			dup = dup || a == action
		}
		if !dup {
			perms[res] = append(perms[res], action)
		}
	}
	return perms, nil
}

// parseMetadata turns KEY=VALUE strings into metadata; a key may appear once.
func parseMetadata(list []string) (client.Metadata, error) {
	md := client.Metadata{}
	for _, kv := range list {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--metadata %q: want KEY=VALUE", kv)
		}
		if _, dup := md[k]; dup {
			return nil, fmt.Errorf("--metadata: key %q given twice", k)
		}
		md[k] = v
	}
	return md, nil
}

func createCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys create"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	account := fs.String("account", "", "")
	name := fs.String("name", "", "")
	expiresAt := fs.String("expires-at", "", "")
	var permFlags, metaFlags listFlag
	fs.Var(&permFlags, "permission", "")
	fs.Var(&metaFlags, "metadata", "")
	pos, code, ok := parseOrExit(fs, args, createHelp, stdout, stderr)
	if !ok {
		return code
	}
	switch {
	case len(pos) > 0:
		return usageError(stderr, cmd, fmt.Sprintf("unexpected argument %q (flags only)", pos[0]))
	case *account == "":
		return usageError(stderr, cmd, "--account is required")
	case *name == "":
		return usageError(stderr, cmd, "--name is required")
	}
	req := client.CreateAPIKeyRequest{Name: *name}
	var err error
	if req.Permissions, err = parsePermissions(permFlags); err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	if len(metaFlags) > 0 {
		md, err := parseMetadata(metaFlags)
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		req.Metadata = &md
	}
	if *expiresAt != "" {
		t, err := time.Parse(time.RFC3339, *expiresAt)
		if err != nil {
			return usageError(stderr, cmd, fmt.Sprintf("--expires-at %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", *expiresAt))
		}
		req.ExpiresAt = &t
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.CreateAPIKey(context.Background(), *account, req)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKey(stdout, stderr, c.json, "Created API key", key)
}

func regenerateCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay keys regenerate"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	grace := fs.Duration("grace-period", 0, "")
	pos, code, ok := parseOrExit(fs, args, regenerateHelp, stdout, stderr)
	if !ok {
		return code
	}
	id, code, ok := keyIDArg(stderr, cmd, pos)
	if !ok {
		return code
	}
	var opts []client.RegenerateOption
	graceGiven := false // without the flag, no body is sent
	fs.Visit(func(f *flag.Flag) { graceGiven = graceGiven || f.Name == "grace-period" })
	if graceGiven {
		if *grace < 0 || *grace%time.Minute != 0 {
			return usageError(stderr, cmd, fmt.Sprintf("--grace-period %v: want whole minutes, 0 or more (e.g. 30m, 24h)", *grace))
		}
		opts = append(opts, client.WithGracePeriod(*grace))
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	key, err := cl.RegenerateAPIKey(context.Background(), id, opts...)
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	return printKey(stdout, stderr, c.json, "Regenerated API key", key)
}
