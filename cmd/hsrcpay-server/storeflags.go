package main

import "github.com/spf13/cobra"

// storeSettings are the settings of the store: every command that opens it
// takes them as flags, as serve does (--database-url, ...), a flag winning
// over the environment there too.
var storeSettings = []string{"HSRCPAY_DATABASE_URL", "HSRCPAY_SQLITE_SYNCHRONOUS", "HSRCPAY_STORE_TIMEOUT"}

// issueSettings are those of bootstrap and rotate-managed: the store's, and
// Redis, where they announce the keys they changed to running servers.
var issueSettings = []string{"HSRCPAY_DATABASE_URL", "HSRCPAY_SQLITE_SYNCHRONOUS", "HSRCPAY_STORE_TIMEOUT", "HSRCPAY_REDIS_URL"}

// registerSettingFlags gives cmd serve's flags for the settings named: the
// same flags (type, default, help, variable and completion), taken from
// registerServeFlags so that the two cannot drift apart.
func registerSettingFlags(cmd *cobra.Command, settings ...string) {
	serve := &cobra.Command{}
	registerServeFlags(serve)
	for _, name := range settings {
		// The flag itself: its value is only ever read by this command
		// (serve registered its own), and its completion goes with it.
		cmd.Flags().AddFlag(serve.Flags().Lookup(flagName(name)))
	}
}
