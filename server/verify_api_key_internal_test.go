package server

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/hsrcpay/apikeys/gen/api"
)

// verifyResponse (appendVerifyEnvelope) writes, for any envelope, exactly what the
// generated api.VerifyApiKey200JSONResponse writes with encoding/json: the
// same body bytes, status and Content-Type, and it refuses what encoding/json
// refuses, sending nothing.
func TestVerifyEncodingMatchesJSON(t *testing.T) {
	refused := 0
	rapid.Check(t, func(t *rapid.T) {
		env := genVerifyEnvelope(t)
		want := httptest.NewRecorder()
		if err := (api.VerifyApiKey200JSONResponse{Body: env}).VisitVerifyApiKeyResponse(want); err != nil {
			// encoding/json refuses it (a year past 9999): so must we.
			got := httptest.NewRecorder()
			if err2 := (&verifyResponse{body: env}).VisitVerifyApiKeyResponse(got); err2 == nil {
				t.Fatalf("encoding/json refuses %#v (%v), appendVerifyEnvelope does not", env, err)
			}
			if got.Body.Len() != 0 || got.Header().Get("Content-Type") != "" {
				t.Fatalf("a refused envelope sent %q (Content-Type %q)", got.Body, got.Header().Get("Content-Type"))
			}
			refused++
			return
		}
		got := httptest.NewRecorder()
		if err := (&verifyResponse{body: env}).VisitVerifyApiKeyResponse(got); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Body.Bytes(), want.Body.Bytes()) {
			t.Fatalf("body:\n got %s\nwant %s", got.Body, want.Body)
		}
		if got.Code != want.Code || got.Header().Get("Content-Type") != want.Header().Get("Content-Type") {
			t.Fatalf("status/Content-Type: got %d %q, want %d %q", got.Code, got.Header().Get("Content-Type"), want.Code, want.Header().Get("Content-Type"))
		}
	})
	if refused == 0 {
		t.Log("no envelope was refused (no time past year 9999 drawn)")
	}
}

func genVerifyEnvelope(t *rapid.T) api.VerifyApiKeyEnvelope {
	str := func(label string) string {
		return rapid.OneOf(
			rapid.SampledFrom([]string{"", "acct_demo", "key_4d8PqZyT6vWb2mK9xR3sN7fH", "payment", "account:api:key", "read", "test", "SECRET", "VALID"}),
			rapid.SampledFrom([]string{"<b>&amp;</b>", `quo"te`, `back\slash`, "tab\t", "nul\x00", "\x7f", "é", "\u2028\u2029", "😀", "\xff\xfe", "a\xc3"}),
			rapid.String(),
			rapid.StringMatching(`[ -~]{0,20}`),
		).Draw(t, label)
	}
	opt := func(label string) bool { return rapid.Bool().Draw(t, label) }
	ptr := func(label string) *string {
		if !opt(label + "?") {
			return nil
		}
		s := str(label)
		return &s
	}
	tm := func(label string) *time.Time {
		if !opt(label + "?") {
			return nil
		}
		sec := rapid.Int64Range(-70_000_000_000, 300_000_000_000).Draw(t, label+".sec")
		nsec := rapid.SampledFrom([]int64{0, 1, 500_000_000, 123_456_789, 100}).Draw(t, label+".nsec")
		v := time.Unix(sec, nsec)
		switch rapid.IntRange(0, 3).Draw(t, label+".zone") {
		case 0:
			v = v.UTC()
		case 1:
			v = v.In(time.FixedZone("", rapid.IntRange(-23*3600, 23*3600).Draw(t, label+".off")/60*60))
		case 2:
			v = v.In(time.FixedZone("odd", rapid.IntRange(-30*3600, 30*3600).Draw(t, label+".odd")))
		}
		return &v
	}
	strs := func(label string) []string {
		if rapid.IntRange(0, 5).Draw(t, label+".nil") == 0 {
			return nil
		}
		n := rapid.IntRange(0, 4).Draw(t, label+".n")
		out := make([]string, n)
		for i := range out {
			out[i] = str(label)
		}
		return out
	}
	d := api.VerifyApiKeyResult{
		AccountId: ptr("account"), Code: api.VerifyCode(str("code")), ExpiresAt: tm("expires"),
		GracePeriodEndsAt: tm("grace"), Id: ptr("id"), Valid: opt("valid"),
	}
	if opt("credits?") {
		v := rapid.Int64().Draw(t, "credits")
		d.CreditsRemaining = &v
	}
	if opt("ingrace?") {
		v := opt("ingrace")
		d.InGracePeriod = &v
	}
	if opt("managed?") {
		v := opt("managed")
		d.Managed = &v
	}
	if opt("missing?") {
		v := strs("missing")
		d.MissingPermissions = &v
	}
	if opt("mode?") {
		v := api.VerifyApiKeyResultMode(str("mode"))
		d.Mode = &v
	}
	if opt("perms?") {
		var p api.Permissions
		if rapid.IntRange(0, 5).Draw(t, "perms.nil") > 0 {
			p = api.Permissions{}
			for range rapid.IntRange(0, 5).Draw(t, "perms.n") {
				p[str("resource")] = strs("actions")
			}
		}
		d.Permissions = &p
	}
	if opt("retry?") {
		v := rapid.IntRange(-1, 1<<40).Draw(t, "retry")
		d.RetryAfterSeconds = &v
	}
	if opt("type?") {
		v := api.VerifyApiKeyResultType(str("type"))
		d.Type = &v
	}
	return api.VerifyApiKeyEnvelope{Data: d, Message: str("message"), Success: opt("success")}
}

// The byte-for-byte claim also holds for the verdicts the handler makes
// (toVerifyResult's shapes).
func TestVerifyEncodingPlainVerdict(t *testing.T) {
	exp := time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)
	id, acct, managed, grace := "key_x", "acct_demo", true, false
	mode, typ := api.VerifyApiKeyResultMode("test"), api.VerifyApiKeyResultType("SECRET")
	perms := api.Permissions{"payment": {"read", "create"}, "account:api:key": {"create"}}
	env := api.VerifyApiKeyEnvelope{Message: "success", Success: true, Data: api.VerifyApiKeyResult{
		Valid: true, Code: "VALID", Id: &id, AccountId: &acct, Mode: &mode, Type: &typ, Managed: &managed,
		Permissions: &perms, ExpiresAt: &exp, InGracePeriod: &grace,
	}}
	rec := httptest.NewRecorder()
	if err := (&verifyResponse{body: env}).VisitVerifyApiKeyResponse(rec); err != nil {
		t.Fatal(err)
	}
	out := rec.Body.String()
	want, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	if out != string(want)+"\n" {
		t.Fatalf("got %s\nwant %s", out, want)
	}
}
