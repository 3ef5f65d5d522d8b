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

// output is a command's stdout for people. It keeps the first write error,
// so that output that could not be written (a closed pipe, a full disk)
// fails the command, as printJSON does, instead of reporting success: a new
// secret is printed only once.
type output struct {
	w   io.Writer
	err error
}

func (o *output) printf(format string, args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintf(o.w, format, args...)
	}
}

func (o *output) println(args ...any) {
	if o.err == nil {
		_, o.err = fmt.Fprintln(o.w, args...)
	}
}

// table aligns tab-separated cells; what it holds reaches o at flush.
type table struct {
	o  *output
	tw *tabwriter.Writer
}

func (o *output) table() *table {
	return &table{o: o, tw: tabwriter.NewWriter(o.w, 0, 0, 2, ' ', 0)}
}

func (t *table) printf(format string, args ...any) {
	if t.o.err == nil {
		_, t.o.err = fmt.Fprintf(t.tw, format, args...)
	}
}

func (t *table) flush() {
	if t.o.err == nil {
		t.o.err = t.tw.Flush()
	}
}

// done returns exitOK, or says on stderr that the output could not be
// written and returns exitError.
func (o *output) done(stderr io.Writer) int {
	if o.err != nil {
		eprintf(stderr, "hsrcpay: writing output: %v\n", o.err)
		return exitError
	}
	return exitOK
}

// eprintf writes a diagnostic to stderr. An error writing it is dropped on
// purpose: there is nowhere left to report it, and the exit code still says
// that the command failed.
func eprintf(stderr io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(stderr, format, args...)
}

// printKey writes key for people, or as JSON with asJSON.
func printKey(stdout, stderr io.Writer, asJSON bool, title string, key *client.APIKey) int {
	if asJSON {
		return printJSON(stdout, stderr, key)
	}
	out := &output{w: stdout}
	out.printf("%s %s\n\n", title, safe(key.ID))
	tab := out.table()
	row := func(k, v string) { tab.printf("  %s:\t%s\n", k, v) }
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
	row("networks", networkList(key.AllowedNetworks))
	row("rate limit", rateLimitText(key.RateLimit))
	row("credits", creditsText(key.Credits))
	row("secret", safe(key.Key))
	tab.flush()
	if key.PreviousKeyExpiresAt != nil {
		out.printf("\nThe previous secret keeps working until %s.", timeOr(key.PreviousKeyExpiresAt, ""))
	}
	out.printf("\n%s\n", secretWarning)
	return out.done(stderr)
}

// printJSON writes v as indented JSON.
func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		eprintf(stderr, "hsrcpay: writing output: %v\n", err)
		return exitError
	}
	return exitOK
}

// printKeyView writes a key as read (no secret) for people, or as JSON.
func printKeyView(stdout, stderr io.Writer, asJSON bool, title string, key *client.APIKeyView) int {
	if asJSON {
		return printJSON(stdout, stderr, key)
	}
	out := &output{w: stdout}
	out.printf("%s %s\n\n", title, safe(key.ID))
	tab := out.table()
	row := func(k, v string) { tab.printf("  %s:\t%s\n", k, v) }
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
	row("networks", networkList(key.AllowedNetworks))
	row("rate limit", rateLimitText(key.RateLimit))
	row("credits", creditsText(key.Credits))
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
	tab.flush()
	switch {
	case key.Deleted:
		out.println("\nThe key is deleted: its secret no longer authenticates.")
	case key.Status == client.StatusInactive:
		out.println("\nThe key is disabled: its secret does not authenticate until it is enabled again.")
	}
	return out.done(stderr)
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
func printKeyTable(stdout, stderr io.Writer, keys []client.APIKeyView) int {
	out := &output{w: stdout}
	if len(keys) == 0 {
		out.println("No API keys match.")
		return out.done(stderr)
	}
	tab := out.table()
	tab.printf("ID\tNAME\tTYPE\tSTATUS\tHINT\tEXPIRES\tCREATED\n")
	for i := range keys {
		k := &keys[i]
		tab.printf("%s\t%s\t%s\t%s\t%s\t%s\t%s\n", safe(k.ID), safe(k.Name), safe(string(k.Type)), keyStatus(k),
			strOr(k.KeyHint, "-"), timeOr(k.ExpiresAt, "never"), timeOr(&k.CreatedAt, ""))
	}
	tab.flush()
	return out.done(stderr)
}

// printAuditTable writes events as a table for people.
func printAuditTable(stdout, stderr io.Writer, events []client.AuditEvent) int {
	out := &output{w: stdout}
	if len(events) == 0 {
		out.println("No audit events match.")
		return out.done(stderr)
	}
	tab := out.table()
	tab.printf("SEQ\tTIME\tACTION\tKEY\tACTOR\tCLIENT IP\tCHANGES\n")
	for i := range events {
		e := &events[i]
		ip := e.ClientIP
		if ip == "" {
			ip = "-"
		}
		tab.printf("%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.Seq, timeOr(&e.CreatedAt, ""), safe(string(e.Action)), safe(e.KeyID),
			safe(string(e.Actor.Kind))+" "+safe(e.Actor.ID), safe(ip), changeList(e.Changes))
	}
	tab.flush()
	return out.done(stderr)
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
			_ = enc.Encode(changes[k]) // a value decoded from JSON always encodes again
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
	// An argument the client refused before sending (a network that is no
	// CIDR, a bound past the spec's): the command line's mistake, nothing sent.
	var arg *client.ArgumentError
	if errors.As(err, &arg) {
		eprintf(stderr, "%s: %v (nothing was sent)\n", cmd, err)
		return exitUsage
	}
	var ae *client.Error
	if !errors.As(err, &ae) {
		eprintf(stderr, "%s: cannot reach the API at %s: %v\n", cmd, apiURL, err)
		return exitError
	}
	if ae.Code == 0 {
		// Not the API's envelope: a proxy's page, or a URL that is not this API.
		eprintf(stderr, "%s: HTTP %d %s from %s, not an API error response (is --api-url right?)\n",
			cmd, ae.StatusCode, http.StatusText(ae.StatusCode), apiURL)
	} else {
		eprintf(stderr, "%s: %s\n", cmd, safe(ae.Message))
		eprintf(stderr, "  status: %d %s, code: %d\n", ae.StatusCode, http.StatusText(ae.StatusCode), ae.Code)
	}
	if ae.RequestID != "" {
		eprintf(stderr, "  request id: %s (quote it to support)\n", safe(ae.RequestID))
	}
	for _, f := range ae.Fields {
		field := f.Field
		if field == "" {
			field = "(request)"
		}
		eprintf(stderr, "  invalid %s %s: %s\n", f.Location, safe(field), safe(f.Reason))
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
		eprintf(stderr, "  %s: %s\n", safe(k), safe(string(v)))
	}
	if ae.RetryAfter > 0 {
		eprintf(stderr, "  retry after: %v\n", ae.RetryAfter)
	}
	if ae.Code == client.ErrorCode(40402) {
		eprintf(stderr, "  hint: the API URL (--api-url or HSRCPAY_API_URL) is %s; it should end in /v1\n", apiURL)
	}
	switch {
	case errors.Is(err, client.ErrUnauthorized), errors.Is(err, client.ErrForbidden):
		return exitAuth
	case errors.Is(err, client.ErrNotFound):
		return exitNotFound
	}
	return exitError
}

// networkList is a key's allowed networks for people: "any" when unrestricted.
func networkList(n *[]string) string {
	if n == nil || len(*n) == 0 {
		return "any"
	}
	out := make([]string, len(*n))
	for i, p := range *n {
		out[i] = safe(p)
	}
	return strings.Join(out, " ")
}

// rateLimitText is a key's own rate limit for people: "mode default" when none.
func rateLimitText(r *client.RateLimit) string {
	if r == nil {
		return "mode default"
	}
	return fmt.Sprintf("%d/%s", r.Limit, safe(r.Window))
}

// creditsText is a key's usage credits for people: "none" (verifies spend
// nothing), else what is left and the refill ("1000 left, refill 1000
// monthly on day 15").
func creditsText(c *client.Credits) string {
	if c == nil {
		return "none"
	}
	s := fmt.Sprintf("%d left", c.Remaining)
	if r := c.Refill; r != nil {
		s += fmt.Sprintf(", refill %d %s", r.Amount, safe(string(r.Interval)))
		if r.Day != nil {
			s += fmt.Sprintf(" on day %d", *r.Day)
		}
	}
	return s
}
