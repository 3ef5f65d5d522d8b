package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/hsrcpay/apikeys/client"
)

const secretWarning = "The secret is shown only once: store it now (e.g. in a secret manager); it cannot be retrieved again."

// printKey writes key for people, or as JSON with asJSON.
func printKey(stdout, stderr io.Writer, asJSON bool, title string, key *client.APIKey) int {
	if asJSON {
		return printJSON(stdout, stderr, key)
	}
	fmt.Fprintf(stdout, "%s %s\n\n", title, safe(key.ID))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	row("id", safe(key.ID))
	row("name", safe(key.Name))
	row("type", safe(string(key.Type)))
	row("status", safe(string(key.Status)))
	row("account", safe(key.AccountID))
	row("managed", map[bool]string{true: "yes", false: "no"}[key.Managed])
	row("permissions", permissionList(key.Permissions))
	row("expires at", timeOr(key.ExpiresAt, "never"))
	if len(key.Metadata) > 0 {
		row("metadata", metadataList(key.Metadata))
	}
	row("secret", safe(key.Key))
	tw.Flush()
	if key.PreviousKeyExpiresAt != nil {
		fmt.Fprintf(stdout, "\nThe previous secret keeps working until %s.", timeOr(key.PreviousKeyExpiresAt, ""))
	}
	fmt.Fprintf(stdout, "\n%s\n", secretWarning)
	return exitOK
}

// printJSON writes v as indented JSON.
func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		fmt.Fprintf(stderr, "hsrcpay: writing output: %v\n", err)
		return exitError
	}
	return exitOK
}

// printKeyView writes a key as read (no secret) for people, or as JSON.
func printKeyView(stdout, stderr io.Writer, asJSON bool, title string, key *client.APIKeyView) int {
	if asJSON {
		return printJSON(stdout, stderr, key)
	}
	fmt.Fprintf(stdout, "%s %s\n\n", title, safe(key.ID))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	yesNo := map[bool]string{true: "yes", false: "no"}
	row("id", safe(key.ID))
	row("name", safe(key.Name))
	row("type", safe(string(key.Type)))
	row("status", keyStatus(key))
	row("account", safe(key.AccountID))
	row("managed", yesNo[key.Managed])
	row("permissions", permissionList(key.Permissions))
	row("hint", strOr(key.KeyHint, "none"))
	row("expires at", timeOr(key.ExpiresAt, "never"))
	if len(key.Metadata) > 0 {
		row("metadata", metadataList(key.Metadata))
	}
	row("created at", timeOr(&key.CreatedAt, ""))
	row("created by", actorString(key.CreatedBy))
	row("updated at", timeOr(&key.UpdatedAt, ""))
	lastUsed := timeOr(key.LastUsedAt, "never")
	if key.LastUsedAt != nil && key.LastUsedIP != nil {
		lastUsed += " from " + safe(*key.LastUsedIP)
	}
	row("last used", lastUsed)
	if key.PreviousKeyExpiresAt != nil {
		row("previous secret until", timeOr(key.PreviousKeyExpiresAt, ""))
	}
	tw.Flush()
	switch {
	case key.Deleted:
		fmt.Fprintln(stdout, "\nThe key is deleted: its secret no longer authenticates.")
	case key.Status == client.StatusInactive:
		fmt.Fprintln(stdout, "\nThe key is disabled: its secret does not authenticate until it is enabled again.")
	}
	return exitOK
}

// keyStatus is the status people care about: DELETED overrides the rest.
func keyStatus(k *client.APIKeyView) string {
	if k.Deleted {
		return "DELETED"
	}
	return safe(string(k.Status))
}

func strOr(s *string, none string) string {
	if s == nil || *s == "" {
		return none
	}
	return safe(*s)
}

func actorString(a client.CreatedBy) string {
	s := safe(string(a.Kind)) + " " + safe(a.ID)
	if a.RequestID != "" {
		s += " (request " + safe(a.RequestID) + ")"
	}
	return s
}

// printKeyTable writes keys as a table for people.
func printKeyTable(stdout io.Writer, keys []client.APIKeyView) int {
	if len(keys) == 0 {
		fmt.Fprintln(stdout, "No API keys match.")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tTYPE\tSTATUS\tHINT\tEXPIRES\tCREATED")
	for i := range keys {
		k := &keys[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(k.ID), safe(k.Name), safe(string(k.Type)), keyStatus(k),
			strOr(k.KeyHint, "-"), timeOr(k.ExpiresAt, "never"), timeOr(&k.CreatedAt, ""))
	}
	tw.Flush()
	return exitOK
}

// printAuditTable writes events as a table for people.
func printAuditTable(stdout io.Writer, events []client.AuditEvent) int {
	if len(events) == 0 {
		fmt.Fprintln(stdout, "No audit events match.")
		return exitOK
	}
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tTIME\tACTION\tKEY\tACTOR\tCLIENT IP\tCHANGES")
	for i := range events {
		e := &events[i]
		ip := e.ClientIP
		if ip == "" {
			ip = "-"
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, timeOr(&e.CreatedAt, ""), safe(string(e.Action)), safe(e.KeyID),
			safe(string(e.Actor.Kind))+" "+safe(e.Actor.ID), safe(ip), changeList(e.Changes))
	}
	tw.Flush()
	return exitOK
}

// changeList renders an event's changes as sorted FIELD=VALUE pairs, values
// as compact JSON unless they are plain strings, cut to a readable length.
func changeList(changes map[string]any) string {
	const max = 80
	keys := make([]string, 0, len(changes))
	for k := range changes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		v, isString := changes[k].(string)
		if !isString {
			var b strings.Builder
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			enc.Encode(changes[k])
			v = strings.TrimSuffix(b.String(), "\n")
		}
		parts = append(parts, k+"="+v)
	}
	s := strings.Join(parts, " ")
	if s == "" {
		return "-"
	}
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return safe(s)
}

// safe quotes s when it holds characters a terminal could act on.
func safe(s string) string {
	if strings.IndexFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return strconv.Quote(s)
	}
	return s
}

func timeOr(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

// permissionList renders permissions as sorted RESOURCE:ACTION strings.
func permissionList(p client.Permissions) string {
	var out []string
	for res, actions := range p {
		for _, a := range actions {
			out = append(out, safe(res+":"+a))
		}
	}
	if len(out) == 0 {
		return "none"
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

func metadataList(md client.Metadata) string {
	out := make([]string, 0, len(md))
	for k, v := range md {
		out = append(out, safe(k)+"="+safe(v))
	}
	sort.Strings(out)
	return strings.Join(out, " ")
}

// reportError prints err to stderr and returns the exit code for its kind.
func reportError(stderr io.Writer, cmd, apiURL string, err error) int {
	var ae *client.Error
	if !errors.As(err, &ae) {
		fmt.Fprintf(stderr, "%s: cannot reach the API at %s: %v\n", cmd, apiURL, err)
		return exitError
	}
	if ae.Code == 0 {
		// Not the API's envelope: a proxy's page, or a URL that is not this API.
		fmt.Fprintf(stderr, "%s: HTTP %d %s from %s, not an API error response (is --api-url right?)\n",
			cmd, ae.StatusCode, http.StatusText(ae.StatusCode), apiURL)
	} else {
		fmt.Fprintf(stderr, "%s: %s\n", cmd, safe(ae.Message))
		fmt.Fprintf(stderr, "  status: %d %s, code: %d\n", ae.StatusCode, http.StatusText(ae.StatusCode), ae.Code)
	}
	if ae.RequestID != "" {
		fmt.Fprintf(stderr, "  request id: %s (quote it to support)\n", safe(ae.RequestID))
	}
	for _, f := range ae.Fields {
		field := f.Field
		if field == "" {
			field = "(request)"
		}
		fmt.Fprintf(stderr, "  invalid %s %s: %s\n", f.Location, safe(field), safe(f.Reason))
	}
	var keys []string
	for k := range ae.Details {
		if k != "request_id" && k != "errors" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v, _ := json.Marshal(ae.Details[k])
		fmt.Fprintf(stderr, "  %s: %s\n", safe(k), safe(string(v)))
	}
	if ae.RetryAfter > 0 {
		fmt.Fprintf(stderr, "  retry after: %v\n", ae.RetryAfter)
	}
	if ae.Code == client.ErrorCode(40402) {
		fmt.Fprintf(stderr, "  hint: the API URL (--api-url or HSRCPAY_API_URL) is %s; it should end in /v1\n", apiURL)
	}
	switch {
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return exitAuth
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	}
	return exitError
}
