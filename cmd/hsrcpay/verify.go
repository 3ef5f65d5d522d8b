package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/spf13/cobra"
)

const verifyHelp = `Asks the API whether KEY (an sk_ or pk_ key, e.g. one a caller presented to
your service) works now and, with --permission, whether it holds those
permissions, and prints the verdict: VALID, or NOT_FOUND, REVOKED, DISABLED,
EXPIRED, RATE_LIMITED, INSUFFICIENT_PERMISSIONS, NETWORK_NOT_ALLOWED or
USAGE_EXCEEDED. The key's id, account and
permissions are shown when it is a key of the token's account in its mode; any
other key is NOT_FOUND, exactly as a key that does not exist. Nothing changes,
but a key that works spends its own budget and counts as used, and a VALID
verdict about a key with credits spends --cost of them (1 by default; 0
checks without spending): with fewer left the verdict is USAGE_EXCEEDED and
nothing is spent. The token needs account:api:key:verify.

KEY "-" reads the key from the first line of stdin: arguments are visible to
other local users, so prefer it for a real key.

Exit status: 0 when the verdict is VALID; 1 for any other verdict (printed on
stdout, like a broken audit chain for 'audit verify'). An error of the request
itself keeps its code: 3 when the token is refused (401, 403), 2 for usage.`

const verifyExample = `  hsrcpay keys verify --permission payment:create "$CALLER_KEY"
  printf '%s\n' "$CALLER_KEY" | hsrcpay keys verify --json -`

// stdin is where "keys verify -" reads the key (a variable for the tests).
var stdin io.Reader = os.Stdin

// verifyJSON is what keys verify --json prints: the API's verdict, with the
// API's field names.
type verifyJSON struct {
	Valid              bool               `json:"valid"`
	Code               string             `json:"code"`
	ID                 string             `json:"id,omitempty"`
	AccountID          string             `json:"account_id,omitempty"`
	Mode               string             `json:"mode,omitempty"`
	Type               string             `json:"type,omitempty"`
	Managed            *bool              `json:"managed,omitempty"`
	Permissions        client.Permissions `json:"permissions,omitempty"`
	ExpiresAt          *time.Time         `json:"expires_at"`
	InGracePeriod      *bool              `json:"in_grace_period,omitempty"`
	GracePeriodEndsAt  *time.Time         `json:"grace_period_ends_at"`
	MissingPermissions []string           `json:"missing_permissions,omitempty"`
	RetryAfterSeconds  int                `json:"retry_after_seconds,omitempty"`
	CreditsRemaining   *int64             `json:"credits_remaining,omitempty"`
}

func (a *app) verifyCmd() *cobra.Command {
	var (
		permFlags []string
		asJSON    bool
		clientIP  string
		cost      int
	)
	c := &cobra.Command{
		Use:     "verify [--permission RESOURCE:ACTION ...] [--client-ip ADDRESS] [--cost N] [--json] KEY",
		Short:   "say whether a key works (and holds the permissions given)",
		Long:    verifyHelp,
		Example: verifyExample,
	}
	c.Flags().StringArrayVar(&permFlags, "permission", nil, "the key must also hold the permission `RESOURCE:ACTION`; repeat it for more")
	c.Flags().StringVar(&clientIP, "client-ip", "", "the `ADDRESS` of the client that presented the key: a key restricted to\nnetworks is NETWORK_NOT_ALLOWED when it is absent or outside them")
	c.Flags().IntVar(&cost, "cost", 1, "the credits a VALID verdict spends from a key with credits, `N` from 0 to 1000000")
	jsonFlag(c, &asJSON, "print the verdict as a JSON object")
	c.RunE = func(c *cobra.Command, pos []string) error {
		var opts []client.VerifyOption
		if c.Flags().Changed("cost") {
			opts = append(opts, client.Cost(cost))
		}
		return exit(a.verify(permFlags, clientIP, asJSON, pos, opts...))
	}
	return c
}

func (a *app) verify(permFlags []string, clientIP string, asJSON bool, pos []string, extra ...client.VerifyOption) int {
	const cmd = "hsrcpay keys verify"
	stderr := a.stderr
	switch {
	case len(pos) == 0:
		return usageError(stderr, cmd, "missing KEY (or - to read it from stdin)")
	case len(pos) > 1:
		return usageError(stderr, cmd, fmt.Sprintf("one KEY expected, got %d arguments", len(pos)))
	}
	key := pos[0]
	if key == "-" {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return usageError(stderr, cmd, "reading the key from stdin: "+err.Error())
		}
		key = strings.TrimSpace(line)
	}
	if key == "" {
		return usageError(stderr, cmd, "empty KEY")
	}
	// Checked here for the CLI's own wording; the client takes the flags as given.
	if _, err := parsePermissions(permFlags); err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
	if cl == nil {
		return code
	}
	opts := extra
	if len(permFlags) > 0 {
		opts = append(opts, client.RequirePermissions(permFlags...))
	}
	if clientIP != "" {
		opts = append(opts, client.ClientIP(clientIP))
	}
	v, err := cl.VerifyKey(ctx, key, opts...)
	var argErr *client.ArgumentError
	if errors.As(err, &argErr) {
		return usageError(stderr, cmd, argErr.Name+": "+argErr.Reason) // never the key itself
	}
	if err != nil {
		return reportError(stderr, cmd, a.conn.apiURL, err)
	}
	code = exitOK
	if !v.Valid {
		code = exitError
	}
	if asJSON {
		if printJSON(a.stdout, stderr, toVerifyJSON(v)) != exitOK {
			return exitError
		}
		return code
	}
	if printVerification(a.stdout, stderr, v) != exitOK {
		return exitError
	}
	return code
}

func toVerifyJSON(v *client.Verification) verifyJSON {
	j := verifyJSON{Valid: v.Valid, Code: string(v.Code), ExpiresAt: v.ExpiresAt, GracePeriodEndsAt: v.GracePeriodEndsAt,
		MissingPermissions: v.MissingPermissions, RetryAfterSeconds: int(v.RetryAfter / time.Second), CreditsRemaining: v.CreditsRemaining}
	if v.Found() {
		j.ID, j.AccountID, j.Mode, j.Type = v.ID, v.AccountID, string(v.Mode), string(v.Type)
		j.Managed, j.Permissions, j.InGracePeriod = &v.Managed, v.Permissions, &v.InGracePeriod
	}
	return j
}

// verdictText says what a verdict means, for people.
var verdictText = map[client.VerifyCode]string{
	client.VerifyValid:                   "the key works and holds what was asked",
	client.VerifyNotFound:                "no such key for this token (not a key, unknown, or another account's or mode's)",
	client.VerifyRevoked:                 "the key was deleted, or this replaced secret's grace period ended",
	client.VerifyDisabled:                "the key is disabled",
	client.VerifyExpired:                 "the key has expired",
	client.VerifyRateLimited:             "the key works but is over its budget",
	client.VerifyInsufficientPermissions: "the key works but lacks permissions",
	client.VerifyNetworkNotAllowed:       "the key is restricted to networks, and --client-ip is absent or outside them",
	client.VerifyUsageExceeded:           "the key has fewer credits left than --cost (nothing spent)",
}

// printVerification writes a verdict for people.
func printVerification(stdout, stderr io.Writer, v *client.Verification) int {
	out := &output{w: stdout}
	text, ok := verdictText[v.Code]
	if !ok {
		text = "a verdict this CLI does not know: the key does not work"
	}
	out.printf("%s: %s\n", safe(string(v.Code)), text)
	if !v.Found() {
		return out.done(stderr)
	}
	out.println()
	tab := out.table()
	row := func(k, v string) { tab.printf("  %s:\t%s\n", k, v) }
	row("id", safe(v.ID))
	row("account", safe(v.AccountID))
	row("mode", safe(string(v.Mode)))
	row("type", safe(string(v.Type)))
	row("managed", map[bool]string{true: "yes", false: "no"}[v.Managed])
	row("permissions", permissionList(v.Permissions))
	row("expires at", timeOr(v.ExpiresAt, "never"))
	if v.InGracePeriod {
		row("replaced secret until", timeOr(v.GracePeriodEndsAt, ""))
	}
	if len(v.MissingPermissions) > 0 {
		missing := make([]string, len(v.MissingPermissions))
		for i, p := range v.MissingPermissions {
			missing[i] = safe(p)
		}
		row("missing", strings.Join(missing, " "))
	}
	if v.RetryAfter > 0 {
		row("retry after", v.RetryAfter.String())
	}
	if v.CreditsRemaining != nil {
		row("credits left", fmt.Sprint(*v.CreditsRemaining))
	}
	tab.flush()
	if v.InGracePeriod {
		out.println("\nThis is a replaced secret: it works only until then; its holder should move to the current secret.")
	}
	return out.done(stderr)
}
