package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hsrcpay/apikeys/client"
)

const auditListHelp = `Usage:
  hsrcpay audit list --account ID [--key-id KEY_ID] [--action ACTION] [--limit N] [--json]

Lists the account's audit events in the token's mode, newest first, fetching
every page: who changed which key, when, from where, and what changed (never a
secret). The token needs account:audit:read.

Flags:
  --account ID      account whose events are listed (required)
  --key-id KEY_ID   only events about this key
  --action ACTION   only events of this action: create, regenerate, update,
                    disable, enable, delete or bootstrap
  --limit N         events fetched per request, 1 to 100 (default 20); every
                    page is listed whatever the size
  --json            print one JSON array of the events

` + connectionHelp + `
Example:
  hsrcpay audit list --account acct_demo --key-id key_… --action disable

` + exitCodesHelp

const auditVerifyHelp = `Usage:
  hsrcpay audit verify --account ID [--json]

Fetches every audit event of the account in the token's mode and checks their
hash chain here, without trusting the server: the seqs run from 1 without a
gap, each event's prev_hash is the hash of the one before, and each hash
matches the event's fields. An event edited, inserted or removed in the
database breaks the chain; the first seq that does not hold is named and the
exit code is 1. The token needs account:audit:read.

What it cannot see: events removed at the newest end leave a shorter chain
that still holds. Keep the head it prints (seq and hash) and check later that
the chain still reaches it, or run 'hsrcpay-server audit verify' on the
server, which compares the chain with the head the account records.

Flags:
  --account ID  account whose chain is checked (required)
  --json        print the result as a JSON object

` + connectionHelp + `
` + exitCodesHelp

var auditActions = []string{
	string(client.AuditCreate), string(client.AuditRegenerate), string(client.AuditUpdate), string(client.AuditDisable),
	string(client.AuditEnable), string(client.AuditDelete), string(client.AuditBootstrap),
}

func auditCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, auditHelp)
		return exitUsage
	}
	switch cmd, rest := args[0], args[1:]; cmd {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, auditHelp)
		return exitOK
	case "list":
		return auditListCmd(rest, getenv, stdout, stderr)
	case "verify":
		return auditVerifyCmd(rest, getenv, stdout, stderr)
	default:
		return usageError(stderr, "hsrcpay audit", fmt.Sprintf("unknown command %q", cmd))
	}
}

func auditListCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay audit list"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	account := fs.String("account", "", "")
	keyID := fs.String("key-id", "", "")
	action := fs.String("action", "", "")
	limit := fs.Int("limit", 0, "")
	pos, code, ok := parseOrExit(fs, args, auditListHelp, stdout, stderr)
	if !ok {
		return code
	}
	if code, ok := noArgs(stderr, cmd, pos); !ok {
		return code
	}
	if *account == "" {
		return usageError(stderr, cmd, "--account is required")
	}
	opts := client.ListAuditEventsOptions{KeyID: *keyID, Limit: *limit}
	if *action != "" {
		a, err := oneOf("action", *action, auditActions...)
		if err != nil {
			return usageError(stderr, cmd, err.Error())
		}
		opts.Action = client.AuditAction(a)
	}
	if err := limitFlag(fs, *limit); err != nil {
		return usageError(stderr, cmd, err.Error())
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	events, err := client.Collect(cl.ListAuditEvents(context.Background(), *account, opts))
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	if c.json {
		if events == nil {
			events = []client.AuditEvent{}
		}
		return printJSON(stdout, stderr, events)
	}
	return printAuditTable(stdout, events)
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

func auditVerifyCmd(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	const cmd = "hsrcpay audit verify"
	fs := newFlagSet(cmd, stderr)
	var c conn
	c.register(fs)
	account := fs.String("account", "", "")
	pos, code, ok := parseOrExit(fs, args, auditVerifyHelp, stdout, stderr)
	if !ok {
		return code
	}
	if code, ok := noArgs(stderr, cmd, pos); !ok {
		return code
	}
	if *account == "" {
		return usageError(stderr, cmd, "--account is required")
	}
	cl, code := c.client(cmd, getenv, stderr)
	if cl == nil {
		return code
	}
	events, err := client.Collect(cl.ListAuditEvents(context.Background(), *account, client.ListAuditEventsOptions{Limit: 100}))
	if err != nil {
		return reportError(stderr, cmd, c.apiURL, err)
	}
	if err := client.VerifyAuditChain(events); err != nil {
		var ce *client.AuditChainError
		if errors.As(err, &ce) {
			fmt.Fprintf(stderr, "%s: the audit chain of account %s (%s) is broken at seq %d: %s\n",
				cmd, safe(ce.AccountID), safe(ce.Mode), ce.Seq, safe(ce.Reason))
			fmt.Fprintf(stderr, "  events fetched: %d; an event was changed, removed or inserted after it was written\n", len(events))
		} else {
			fmt.Fprintf(stderr, "%s: %v\n", cmd, err)
		}
		return exitError
	}
	res := verifyResult{AccountID: *account, Events: len(events), Intact: true}
	for _, e := range events {
		if e.Seq > res.HeadSeq {
			res.HeadSeq, res.HeadHash, res.Mode = e.Seq, e.Hash, string(e.Mode)
		}
	}
	if c.json {
		return printJSON(stdout, stderr, res)
	}
	if len(events) == 0 {
		fmt.Fprintf(stdout, "Account %s has no audit events in this mode: nothing to verify.\n", safe(*account))
		return exitOK
	}
	fmt.Fprintf(stdout, "The audit chain of account %s (%s) holds: %d events, seq 1 to %d.\n",
		safe(res.AccountID), safe(res.Mode), res.Events, res.HeadSeq)
	fmt.Fprintf(stdout, "Head: seq %d, hash %s\n", res.HeadSeq, safe(res.HeadHash))
	fmt.Fprintf(stdout, "Events removed at the newest end cannot be seen from here: keep this head and\ncheck later that the chain still reaches it, or run 'hsrcpay-server audit verify'.\n")
	return exitOK
}
