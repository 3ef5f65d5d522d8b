package main

import (
	"errors"
	"strings"

	"github.com/hsrcpay/apikeys/client"
	"github.com/spf13/cobra"
)

const auditListHelp = `Lists the account's audit events in the token's mode, newest first, fetching
every page: who changed which key, when, from where, and what changed (never a
secret). The token needs account:audit:read.`

const auditVerifyHelp = `Fetches every audit event of the account in the token's mode and checks their
hash chain here, without trusting the server: the seqs run from 1 without a
gap, each event's prev_hash is the hash of the one before, and each hash
matches the event's fields. An event edited, inserted or removed in the
database breaks the chain; the first seq that does not hold is named and the
exit code is 1. The token needs account:audit:read.

What it cannot see: events removed at the newest end leave a shorter chain
that still holds. Keep the head it prints (seq and hash) and check later that
the chain still reaches it, or run 'hsrcpay-server audit verify' on the
server, which compares the chain with the head the account records.`

var auditActions = []string{
	string(client.AuditCreate), string(client.AuditRegenerate), string(client.AuditUpdate), string(client.AuditDisable),
	string(client.AuditEnable), string(client.AuditDelete), string(client.AuditBootstrap),
}

func (a *app) auditListCmd() *cobra.Command {
	var (
		account, keyID, action string
		limit                  int
		asJSON                 bool
	)
	c := &cobra.Command{
		Use:     "list --account ID [--key-id KEY_ID] [--action ACTION] [--limit N] [--json]",
		Short:   "list an account's audit events, newest first",
		Long:    auditListHelp,
		Example: "  hsrcpay audit list --account acct_demo --key-id key_… --action disable",
	}
	f := c.Flags()
	f.StringVar(&account, "account", "", "account whose events are listed (required)")
	f.StringVar(&keyID, "key-id", "", "only events about this key")
	f.StringVar(&action, "action", "", "only events of this action: create, regenerate, update,\ndisable, enable, delete or bootstrap")
	limitFlag(c, &limit, "events")
	jsonFlag(c, &asJSON, "print one JSON array of the events")
	completeValues(c, "action", auditActionsLower()...)
	c.RunE = func(c *cobra.Command, pos []string) error {
		const cmd = "hsrcpay audit list"
		stderr := a.stderr
		if code, ok := noArgs(stderr, cmd, pos); !ok {
			return exit(code)
		}
		if account == "" {
			return exit(usageError(stderr, cmd, "--account is required"))
		}
		opts := client.ListAuditEventsOptions{KeyID: keyID, Limit: limit}
		if action != "" {
			act, err := oneOf("action", action, auditActions...)
			if err != nil {
				return exit(usageError(stderr, cmd, err.Error()))
			}
			opts.Action = client.AuditAction(act)
		}
		if err := checkLimit(c, limit); err != nil {
			return exit(usageError(stderr, cmd, err.Error()))
		}
		cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
		if cl == nil {
			return exit(code)
		}
		events, err := client.Collect(cl.ListAuditEvents(ctx, account, opts))
		if err != nil {
			return exit(reportError(stderr, cmd, a.conn.apiURL, err))
		}
		if asJSON {
			if events == nil {
				events = []client.AuditEvent{}
			}
			return exit(printJSON(a.stdout, stderr, events))
		}
		return exit(printAuditTable(a.stdout, stderr, events))
	}
	return c
}

func auditActionsLower() []string {
	out := make([]string, len(auditActions))
	for i, act := range auditActions {
		out[i] = strings.ToLower(act)
	}
	return out
}

// verifyResult is what audit verify --json prints.
type verifyResult struct {
	AccountID string `json:"account_id"`
	Mode      string `json:"mode,omitempty"`
	Events    int    `json:"events"`
	HeadSeq   int    `json:"head_seq"`
	HeadHash  string `json:"head_hash"`
	Intact    bool   `json:"intact"`
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var (
		account string
		asJSON  bool
	)
	c := &cobra.Command{
		Use:   "verify --account ID [--json]",
		Short: "check the account's audit hash chain",
		Long:  auditVerifyHelp,
	}
	c.Flags().StringVar(&account, "account", "", "account whose chain is checked (required)")
	jsonFlag(c, &asJSON, "print the result as a JSON object")
	c.RunE = func(_ *cobra.Command, pos []string) error {
		return exit(a.auditVerify(account, asJSON, pos))
	}
	return c
}

func (a *app) auditVerify(account string, asJSON bool, pos []string) int {
	const cmd = "hsrcpay audit verify"
	stderr := a.stderr
	if code, ok := noArgs(stderr, cmd, pos); !ok {
		return code
	}
	if account == "" {
		return usageError(stderr, cmd, "--account is required")
	}
	cl, ctx, code := a.conn.client(cmd, a.getenv, stderr)
	if cl == nil {
		return code
	}
	events, err := client.Collect(cl.ListAuditEvents(ctx, account, client.ListAuditEventsOptions{Limit: 100}))
	if err != nil {
		return reportError(stderr, cmd, a.conn.apiURL, err)
	}
	if err := client.VerifyAuditChain(events); err != nil {
		var ce *client.AuditChainError
		if errors.As(err, &ce) {
			eprintf(stderr, "%s: the audit chain of account %s (%s) is broken at seq %d: %s\n",
				cmd, safe(ce.AccountID), safe(ce.Mode), ce.Seq, safe(ce.Reason))
			eprintf(stderr, "  events fetched: %d; an event was changed, removed or inserted after it was written\n", len(events))
		} else {
			eprintf(stderr, "%s: %v\n", cmd, err)
		}
		return exitError
	}
	res := verifyResult{AccountID: account, Events: len(events), Intact: true}
	for _, e := range events {
		if e.Seq > res.HeadSeq {
			res.HeadSeq, res.HeadHash, res.Mode = e.Seq, e.Hash, string(e.Mode)
		}
	}
	if asJSON {
		return printJSON(a.stdout, stderr, res)
	}
	out := &output{w: a.stdout}
	if len(events) == 0 {
		out.printf("Account %s has no audit events in this mode: nothing to verify.\n", safe(account))
		return out.done(stderr)
	}
	out.printf("The audit chain of account %s (%s) holds: %d events, seq 1 to %d.\n",
		safe(res.AccountID), safe(res.Mode), res.Events, res.HeadSeq)
	out.printf("Head: seq %d, hash %s\n", res.HeadSeq, safe(res.HeadHash))
	out.printf("Events removed at the newest end cannot be seen from here: keep this head and\ncheck later that the chain still reaches it, or run 'hsrcpay-server audit verify'.\n")
	return out.done(stderr)
}
