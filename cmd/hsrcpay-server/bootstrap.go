package main

import (
	"context"
	"io"
	"os"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/config"
	"github.com/spf13/cobra"
)

// newBootstrapCmd is "bootstrap": a new account's managed keys, printed once.
func newBootstrapCmd(stdout, stderr io.Writer) *cobra.Command {
	var account, mode string
	bootstrap := &cobra.Command{
		Use:   "bootstrap --account ID [--mode live|test|both]",
		Short: "Create an account and print its managed keys once, as JSON",
		Long: `Creates an account and its managed keys (a secret and a publishable key per
mode) and prints them once, as JSON: secrets are never stored and cannot be
shown again. Refuses an account that already exists in any of the modes,
writing nothing. Settings (HSRCPAY_DATABASE_URL, ...) come from the environment
or from the same flags as serve's (--database-url, ...), a flag winning.`,
		Example: "  hsrcpay-server bootstrap --account acct_123\n  hsrcpay-server bootstrap --account acct_123 --mode test",
		Args:    cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			return exit(bootstrapRun(account, mode, serveLookup(c.Flags(), os.LookupEnv), stdout, stderr))
		},
	}
	bootstrap.DisableFlagsInUseLine = true // its Use spells them out
	bootstrap.Flags().StringVar(&account, "account", "", "account id to create: 1-64 letters, digits, _ or - (required)")
	bootstrap.Flags().StringVar(&mode, "mode", "both", "modes to create it in: live, test or both")
	_ = bootstrap.RegisterFlagCompletionFunc("mode", cobra.FixedCompletions([]string{"live", "test", "both"}, cobra.ShellCompDirectiveNoFileComp))
	registerSettingFlags(bootstrap, issueSettings...)
	return bootstrap
}

func bootstrapRun(account, mode string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if !config.ValidAccountID(account) {
		eprintf(stderr, "hsrcpay-server bootstrap: --account must be 1-64 letters, digits, _ or - (starting with a letter or digit)\n")
		return 2
	}
	modes := map[string][]apikey.Mode{"live": {apikey.Live}, "test": {apikey.Sandbox}, "both": apikey.Modes}[mode]
	if modes == nil {
		eprintf(stderr, "hsrcpay-server bootstrap: --mode must be live, test or both\n")
		return 2
	}
	return issueOffline("bootstrap", lookup, stdout, stderr, func(ctx context.Context, svc *apikeys.Service) ([]apikeys.Issued, error) {
		return svc.Bootstrap(ctx, account, modes)
	})
}
