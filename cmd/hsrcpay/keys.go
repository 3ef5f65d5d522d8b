package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hsrcpay/apikeys/client"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

const createHelp = `Creates a custom secret key on an account and prints it with its secret, which
is shown only this once. The token needs account:api:key:create and every
permission it grants.

Each call sends an Idempotency-Key (a new random one unless --idempotency-key
gives it) and is retried for up to 30 s while its outcome is unknown (the API
restarting, a connection that broke). If it still gets no answer, it prints
the key on stderr with the command that resumes the call; to retry a call
yourself (the command died), repeat it with the same flags and the same
--idempotency-key: within 24 h you get that call's key and secret, not a
second key.`

const createExample = `  hsrcpay keys create --account acct_demo --name "Checkout backend" \
      --permission payment:create --permission payment:read --metadata team=checkout`

const regenerateHelp = `Rotates the secret of a managed key and prints the new secret, which is shown
only this once. The key id stays the same. The token needs
account:api:key:update.

As with create, a call whose outcome stays unknown prints its Idempotency-Key
and the command that resumes it, and repeating a call with the same flags and
--idempotency-key within 24 h prints the first call's secret instead of
rotating again.`

const regenerateExample = `  hsrcpay keys regenerate --grace-period 1h "$HSRCPAY_KEY_ID"`

// conn holds the connection flags every API command has.
type conn struct {
	apiKey, apiURL string
	timeout        time.Duration // --timeout
	timeoutFlag    *pflag.Flag   // whether --timeout was given
	// opts are more client options, after the CLI's own (tests shorten the
	// retry budget with them).
	opts []client.Option
	// cancel ends the context client returned (run calls stop).
	cancel context.CancelFunc
}

// client builds the API client from the flags and the environment, and the
// context its calls take (ended after --timeout, when there is one); code
// is exitUsage (already reported) when that is impossible.
func (c *conn) client(cmd string, getenv func(string) string, stderr io.Writer) (cl *client.Client, ctx context.Context, code int) {
	token := c.apiKey
	if token == "" {
		token = getenv("HSRCPAY_API_KEY")
	}
	if token == "" {
		return nil, nil, usageError(stderr, cmd, "no API key: set HSRCPAY_API_KEY or pass --api-key")
	}
	if c.apiURL == "" {
		c.apiURL = getenv("HSRCPAY_API_URL")
	}
	if c.apiURL == "" {
		c.apiURL = defaultAPIURL
	}
	timeout, source := c.timeout, "--timeout"
	if c.timeoutFlag == nil || !c.timeoutFlag.Changed {
		if v := getenv("HSRCPAY_TIMEOUT"); v != "" {
			d, err := time.ParseDuration(strings.TrimSpace(v))
			if err != nil {
				return nil, nil, usageError(stderr, cmd, fmt.Sprintf("HSRCPAY_TIMEOUT=%q: want a duration such as 10s or 1m", v))
			}
			timeout, source = d, "HSRCPAY_TIMEOUT"
		}
	}
	if timeout < 0 {
		return nil, nil, usageError(stderr, cmd, fmt.Sprintf("%s %v: want a duration of 0 (none) or more", source, timeout))
	}
	cl, err := client.New(c.apiURL, token, append([]client.Option{client.WithUserAgent("hsrcpay-cli")}, c.opts...)...)
	if err != nil {
		return nil, nil, usageError(stderr, cmd, strings.TrimPrefix(err.Error(), "client: "))
	}
	ctx = context.Background()
	if timeout > 0 {
		// A keyed create or regenerate cut short says how to resume it
		// (reportCallError), as after the client's own retry budget.
		ctx, c.cancel = context.WithTimeout(ctx, timeout)
	}
	return cl, ctx, exitOK
}

// stop releases the context client made, if any.
func (c *conn) stop() {
	if c.cancel != nil {
		c.cancel()
	}
}

// jsonFlag registers --json.
func jsonFlag(c *cobra.Command, asJSON *bool, usage string) {
	c.Flags().BoolVar(asJSON, "json", false, usage)
}

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

// allowFlag is --allow, the key's allowed networks (create and update).
func allowFlag(c *cobra.Command, dst *[]string) {
	c.Flags().StringArrayVar(dst, "allow", nil, "let the key work only from the network `CIDR` (an IPv4 or IPv6 address or prefix,\ne.g. 10.0.0.0/8); repeat it for more. Default: any address")
}

// rateLimitFlag is --rate-limit, the key's own request budget (create and update).
func rateLimitFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVar(dst, "rate-limit", "", "the key's own budget `N/WINDOW`: N requests per window of s, m, h or d\n(e.g. 100/1m, 5000/1d; 1s to 1d); default: the mode's budget")
}

// creditsFlags are --credits and --refill, the key's usage credits (create
// and update).
func creditsFlags(c *cobra.Command, credits, refill *string) {
	c.Flags().StringVar(credits, "credits", "", "give the key `N` usage credits: each verify of it that is otherwise VALID\nspends its cost (1 by default), USAGE_EXCEEDED at 0; default: none")
	c.Flags().StringVar(refill, "refill", "", "with --credits, put them back to `AMOUNT/INTERVAL` at 00:00 UTC: AMOUNT/daily,\nAMOUNT/monthly (on the 1st) or AMOUNT/monthly@DAY (e.g. 1000/monthly@15)")
}

// parseCredits reads --credits N and --refill AMOUNT/INTERVAL[@DAY]; the
// flag names are for messages.
func parseCredits(credits, refill string) (*client.Credits, error) {
	n, err := strconv.ParseInt(credits, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("--credits %q: want a whole number of credits, such as 1000", credits)
	}
	c := &client.Credits{Remaining: n}
	if refill == "" {
		return c, nil
	}
	bad := fmt.Errorf("--refill %q: want AMOUNT/daily, AMOUNT/monthly or AMOUNT/monthly@DAY, such as 1000/monthly", refill)
	amount, interval, ok := strings.Cut(refill, "/")
	a, err := strconv.ParseInt(amount, 10, 64)
	if !ok || err != nil {
		return nil, bad
	}
	r := &client.CreditRefill{Amount: a, Interval: client.RefillInterval(interval)}
	if iv, day, ok := strings.Cut(interval, "@"); ok {
		d, err := strconv.Atoi(day)
		if err != nil || iv != string(client.RefillMonthly) {
			return nil, bad
		}
		r.Interval, r.Day = client.RefillMonthly, &d
	}
	if !r.Interval.Valid() {
		return nil, bad
	}
	c.Refill = r
	return c, nil
}

// parseRateLimit reads N/WINDOW (100/1m).
func parseRateLimit(s string) (*client.RateLimit, error) {
	n, window, ok := strings.Cut(s, "/")
	limit, err := strconv.Atoi(n)
	if !ok || err != nil || window == "" {
		return nil, fmt.Errorf("--rate-limit %q: want N/WINDOW, such as 100/1m", s)
	}
	return &client.RateLimit{Limit: limit, Window: window}, nil
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

func (a *app) createCmd() *cobra.Command {
	var (
		account, name, expiresAt string
		permFlags, metaFlags     []string
		allowFlags               []string
		rateLimit                string
		credits, refill          string
		asJSON                   bool
		idemKey                  string
	)
	c := &cobra.Command{
		Use:     "create --account ID --name NAME [--permission RESOURCE:ACTION ...] [--expires-at RFC3339] [--metadata KEY=VALUE ...] [--allow CIDR ...] [--rate-limit N/WINDOW] [--credits N [--refill AMOUNT/INTERVAL]] [--idempotency-key KEY] [--json]",
		Short:   "create a custom secret key on an account",
		Long:    createHelp,
		Example: createExample,
	}
	f := c.Flags()
	f.StringVar(&account, "account", "", "account that will own the key (required)")
	f.StringVar(&name, "name", "", "display name, unique among the account's active keys (required)")
	f.StringArrayVar(&permFlags, "permission", nil, "grant the permission `RESOURCE:ACTION`; repeat it for more. Split at the\nlast colon: account:api:key:create is action \"create\" on resource \"account:api:key\"")
	f.StringVar(&expiresAt, "expires-at", "", "when the key stops working, RFC 3339 (e.g. 2030-01-01T00:00:00Z); default: never")
	f.StringArrayVar(&metaFlags, "metadata", nil, "set the metadata pair `KEY=VALUE`; repeat it for more")
	allowFlag(c, &allowFlags)
	rateLimitFlag(c, &rateLimit)
	creditsFlags(c, &credits, &refill)
	idempotencyKeyFlag(c, &idemKey)
	jsonFlag(c, &asJSON, "print the API key object as JSON")
	c.RunE = func(_ *cobra.Command, pos []string) error {
		const cmd = "hsrcpay keys create"
		stderr := a.stderr
		switch {
		case len(pos) > 0:
			return exit(usageError(stderr, cmd, fmt.Sprintf("unexpected argument %q (flags only)", pos[0])))
		case account == "":
			return exit(usageError(stderr, cmd, "--account is required"))
		case name == "":
			return exit(usageError(stderr, cmd, "--name is required"))
		}
		req := client.CreateAPIKeyRequest{Name: name}
		var err error
		if req.Permissions, err = parsePermissions(permFlags); err != nil {
			return exit(usageError(stderr, cmd, err.Error()))
		}
		if len(metaFlags) > 0 {
			md, err := parseMetadata(metaFlags)
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			req.Metadata = &md
		}
		if expiresAt != "" {
			t, err := time.Parse(time.RFC3339, expiresAt)
			if err != nil {
				return exit(usageError(stderr, cmd, fmt.Sprintf("--expires-at %q: want an RFC 3339 time such as 2030-01-01T00:00:00Z", expiresAt)))
			}
			req.ExpiresAt = &t
		}
		if len(allowFlags) > 0 {
			req.AllowedNetworks = &allowFlags
		}
		if rateLimit != "" {
			if req.RateLimit, err = parseRateLimit(rateLimit); err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
		}
		switch {
		case credits != "":
			if req.Credits, err = parseCredits(credits, refill); err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
		case refill != "":
			return exit(usageError(stderr, cmd, "--refill needs --credits"))
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		idem, err := idempotencyOption(idemKey)
		if err != nil {
			return exit(usageError(stderr, cmd, err.Error()))
		}
		key, err := cl.CreateAPIKey(ctx, account, req, idem)
		if err != nil {
			resume := []string{"--account", account, "--name", name}
			for _, p := range permFlags {
				resume = append(resume, "--permission", p)
			}
			if expiresAt != "" {
				resume = append(resume, "--expires-at", expiresAt)
			}
			for _, kv := range metaFlags {
				resume = append(resume, "--metadata", kv)
			}
			for _, n := range allowFlags {
				resume = append(resume, "--allow", n)
			}
			if rateLimit != "" {
				resume = append(resume, "--rate-limit", rateLimit)
			}
			if credits != "" {
				resume = append(resume, "--credits", credits)
			}
			if refill != "" {
				resume = append(resume, "--refill", refill)
			}
			if asJSON {
				resume = append(resume, "--json")
			}
			return exit(reportCallError(stderr, cmd, a.conn.apiURL, resume, err,
				"the key may have been created, its secret not shown"))
		}
		return exit(printKey(a.stdout, stderr, asJSON, "Created API key", key))
	}
	return c
}

func (a *app) regenerateCmd() *cobra.Command {
	var (
		grace   time.Duration
		asJSON  bool
		idemKey string
	)
	c := &cobra.Command{
		Use:     "regenerate [--grace-period DURATION] [--idempotency-key KEY] [--json] KEY_ID",
		Short:   "rotate the secret of a managed key",
		Long:    regenerateHelp,
		Example: regenerateExample,
	}
	c.Flags().DurationVar(&grace, "grace-period", 0, "keep the previous secret working this long beside the new one (whole\nminutes, e.g. 30m or 24h; at most 168h); default: it stops working at once")
	idempotencyKeyFlag(c, &idemKey)
	jsonFlag(c, &asJSON, "print the API key object as JSON")
	c.RunE = func(c *cobra.Command, pos []string) error {
		const cmd = "hsrcpay keys regenerate"
		stderr := a.stderr
		id, code, ok := keyIDArg(stderr, cmd, pos)
		if !ok {
			return exit(code)
		}
		idem, err := idempotencyOption(idemKey)
		if err != nil {
			return exit(usageError(stderr, cmd, err.Error()))
		}
		opts := []client.RegenerateOption{idem}
		if c.Flags().Changed("grace-period") { // without the flag, no body is sent
			if grace < 0 || grace%time.Minute != 0 {
				return exit(usageError(stderr, cmd, fmt.Sprintf("--grace-period %v: want whole minutes, 0 or more (e.g. 30m, 24h)", grace)))
			}
			opts = append(opts, client.WithGracePeriod(grace))
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		key, err := cl.RegenerateAPIKey(ctx, id, opts...)
		if err != nil {
			var resume []string
			if c.Flags().Changed("grace-period") {
				resume = append(resume, "--grace-period", grace.String())
			}
			if asJSON {
				resume = append(resume, "--json")
			}
			return exit(reportCallError(stderr, cmd, a.conn.apiURL, append(resume, id), err,
				"the secret may have been rotated (the previous one then stops working, or enters its grace period), the new one not shown"))
		}
		return exit(printKey(a.stdout, stderr, asJSON, "Regenerated API key", key))
	}
	return c
}

// idempotencyKeyFlag adds --idempotency-key to create and regenerate.
func idempotencyKeyFlag(c *cobra.Command, dst *string) {
	c.Flags().StringVar(dst, "idempotency-key", "", "send this Idempotency-Key (1 to 255 printable ASCII characters) instead of a new\n"+
		"random one: to retry an earlier call whose answer was lost, repeat it with the\nsame key and flags; "+
		"within 24 h the server answers with that call's key and\nsecret instead of making another")
}

// idempotencyOption is the client option for --idempotency-key: the given
// key, or (unset) the client's default, a new random key.
func idempotencyOption(key string) (client.RequestOption, error) {
	if key == "" {
		return nil, nil
	}
	if !client.ValidIdempotencyKey(key) {
		return nil, fmt.Errorf("--idempotency-key %q: want 1 to 255 printable ASCII characters", key)
	}
	return client.WithIdempotencyKey(key), nil
}

// reportCallError reports the failure of a create or regenerate: as
// reportError, and, when its outcome is unknown (a *client.UnresolvedError),
// what may have happened (maybe) and the command that resumes it: cmd with
// args (its own flags and arguments, never the connection flags: the token
// stays out of sight) and the call's --idempotency-key.
func reportCallError(stderr io.Writer, cmd, apiURL string, args []string, err error, maybe string) int {
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) {
		return reportError(stderr, cmd, apiURL, err)
	}
	code := reportError(stderr, cmd, apiURL, ue.Err)
	line := cmd
	for _, a := range append(args, "--idempotency-key", ue.IdempotencyKey) {
		line += " " + shellQuote(a)
	}
	eprintf(stderr, "%s: the outcome is unknown after %d attempt(s): %s.\n", cmd, ue.Attempts, maybe)
	eprintf(stderr, "  idempotency key: %s\n", safe(ue.IdempotencyKey))
	eprintf(stderr, "  To resume within 24 h, run this (with the same API key and URL): it prints the\n"+
		"  call's result if it was carried out, or carries it out once:\n    %s\n", line)
	return code
}

// shellQuote quotes s for a POSIX shell when it needs it: as is when plain,
// in single quotes when printable, else as $'…' with escapes, so that a
// control character in a name reaches neither the terminal nor the shell raw.
func shellQuote(s string) string {
	switch {
	case s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r < utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("@%+=:,./_-", r)))
	}) < 0:
		return s
	case strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) < 0:
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
	}
	q := strconv.Quote(s) // Go's escapes (\n, \x1b, \u200b, \") are also $'…' escapes
	return "$'" + strings.ReplaceAll(q[1:len(q)-1], "'", `\'`) + "'"
}
