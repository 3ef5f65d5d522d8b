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
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(key); err != nil {
			fmt.Fprintf(stderr, "hsrcpay: writing output: %v\n", err)
			return exitError
		}
		return exitOK
	}
	fmt.Fprintf(stdout, "%s %s\n\n", title, safe(key.Id))
	tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s:\t%s\n", k, v) }
	row("id", safe(key.Id))
	row("name", safe(key.Name))
	row("type", safe(string(key.Type)))
	row("status", safe(string(key.Status)))
	row("account", safe(key.AccountId))
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
