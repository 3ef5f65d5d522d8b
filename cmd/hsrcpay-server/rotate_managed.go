package main

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/spf13/cobra"
)

// newRotateManagedCmd is "rotate-managed": new secrets for an account's
// managed keys in one mode, printed once.
func newRotateManagedCmd(stdout, stderr io.Writer) *cobra.Command {
	var rotAccount, rotMode string
	rotate := &cobra.Command{
		Use:   "rotate-managed --account ID --mode live|test",
		Short: "Give an account's managed keys new secrets and print them once, as JSON",
		Long: `Rotates an account's managed keys in one mode (its secret and publishable key),
without grace: the old secrets stop working, and the new ones are printed once,
as JSON. For an owner who lost the managed secret, or whose managed secret key
a leak report rotated (its new secret is shown to nobody; a leak report never
rotates the publishable key, public by design). It restores the account's
root credential: a managed secret key found switched off is switched back on
in the same transaction (said on stderr); one that is deleted or expired
cannot be restored, and the command fails (exit 1) changing nothing. Each
change is recorded (actor platform). With HSRCPAY_REDIS_URL the change is
announced to running servers as they announce theirs (waiting at most 2s
before exiting): they refuse the old secrets within 1s. Without it, or when
Redis cannot be reached (a warning on stderr), within their credential
cache's lifetime (HSRCPAY_CREDENTIAL_CACHE_TTL).
Settings (HSRCPAY_DATABASE_URL, ...) come from the environment or from the same
flags as serve's (--database-url, ...), a flag winning.`,
		Example: "  hsrcpay-server rotate-managed --account acct_123 --mode live",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(rotateManagedRun(rotAccount, rotMode, serveLookup(c.Flags(), os.LookupEnv), stdout, stderr))
		},
	}
	rotate.DisableFlagsInUseLine = true // its Use spells them out
	rotate.Flags().StringVar(&rotAccount, "account", "", "account id (required)")
	rotate.Flags().StringVar(&rotMode, "mode", "", "mode whose managed keys to rotate: live or test (required)")
	_ = rotate.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"live", "test"}, cobra.ShellCompDirectiveNoFileComp))
	registerSettingFlags(rotate, issueSettings...)
	return rotate
}

// rotateManagedRun runs "rotate-managed": new secrets for an existing
// account's managed keys in one mode, printed once.
func rotateManagedRun(account, mode string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if !config.ValidAccountID(account) {
		eprintf(stderr, "hsrcpay-server rotate-managed: --account must be 1-64 letters, digits, _ or - (starting with a letter or digit)\n")
		return 2
	}
	m := map[string]apikey.Mode{"live": apikey.Live, "test": apikey.Sandbox}[mode]
	if m == "" {
		eprintf(stderr, "hsrcpay-server rotate-managed: --mode must be live or test\n")
		return 2
	}
	return issueOffline("rotate-managed", lookup, stdout, stderr, func(ctx context.Context, svc *apikeys.Service) ([]apikeys.Issued, error) {
		issued, err := svc.RotateManaged(ctx, account, m)
		if err == nil && len(issued) == 0 {
			err = fmt.Errorf("account %s has no managed keys in mode %s", account, mode)
		}
		// Say what was done besides new secrets, so that the operator is not
		// handed a secret that will be refused without knowing why.
		for _, is := range issued {
			switch {
			case is.Reenabled:
				eprintf(stderr, "hsrcpay-server rotate-managed: the managed secret key %s was switched off (INACTIVE): switched back on and rotated (audit events enable and regenerate)\n", is.Key.ID)
			case is.Key.Status != apikey.StatusActive:
				eprintf(stderr, "hsrcpay-server rotate-managed: the managed publishable key %s is switched off (INACTIVE), as its owner left it: rotated, still off until switched on (PATCH /v1/api-keys/%s {\"status\":\"ACTIVE\"})\n", is.Key.ID, is.Key.ID)
			}
		}
		return issued, err
	})
}
