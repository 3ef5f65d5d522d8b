package auth_test

import (
	"context"
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// jtNow is the verifier's clock in these tests, so boundaries are exact.
var jtNow = time.Unix(1_800_000_000, 0)

// jtKit signs hand-built headers and payloads with a P-256 key whose public
// half the verifier trusts.
type jtKit struct {
	t       testing.TB
	key     *ecdsa.PrivateKey
	pemFile string
}

func newJTKit(t testing.TB) *jtKit {
	t.Helper()
	iss := testenv.NewJWTIssuer(t) // a P-256 key and its public half as PEM
	return &jtKit{t: t, key: iss.Key, pemFile: iss.PublicKeyFile}
}

func (k *jtKit) verifier(maxLifetime time.Duration) *auth.JWTVerifier {
	k.t.Helper()
	v, err := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{
		PublicKeyFile: k.pemFile, Issuer: "jt-iss", Audience: "jt-aud",
		MaxLifetime: maxLifetime, Now: func() time.Time { return jtNow },
	})
	if err != nil {
		k.t.Fatal(err)
	}
	return v
}

// sign signs header and payload exactly as given (ES256 over the signing input).
func (k *jtKit) sign(header, payload string) string {
	k.t.Helper()
	input := b64(header) + "." + b64(payload)
	sig, err := jwt.SigningMethodES256.Sign(input, k.key)
	if err != nil {
		k.t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func b64(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

const jtHeader = `{"alg":"ES256","typ":"JWT"}`

// jtPayload is a valid payload (iat now, exp in an hour) with fields
// replaced: pairs of name and raw JSON value; a name not in the base is
// appended, and a nil-like value "-" removes the field.
func jtPayload(over ...string) string {
	fields := [][2]string{
		{"iss", `"jt-iss"`}, {"aud", `"jt-aud"`}, {"sub", `"ops"`}, {"accounts", `["acct_jt"]`},
		{"permissions", `["account:api:key:create"]`}, {"mode", `"test"`},
		{"iat", at(0)}, {"exp", at(time.Hour)},
	}
	for i := 0; i+1 < len(over); i += 2 {
		name, value := over[i], over[i+1]
		found := false
		for j := range fields {
			if fields[j][0] == name {
				fields[j][1], found = value, true
			}
		}
		if !found {
			fields = append(fields, [2]string{name, value})
		}
	}
	var parts []string
	for _, f := range fields {
		if f[1] != "-" {
			parts = append(parts, fmt.Sprintf("%q:%s", f[0], f[1]))
		}
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// at is jtNow + d as a JSON integer.
func at(d time.Duration) string { return fmt.Sprint(jtNow.Add(d).Unix()) }

type jtCase struct {
	name            string
	header, payload string
	want            error // nil: accepted
}

func jtCases() []jtCase {
	h := jtHeader
	p := jtPayload
	day := 24 * time.Hour
	return []jtCase{
		// Accepted.
		{"normal token", h, p(), nil},
		{"kid in the header", `{"alg":"ES256","typ":"JWT","kid":"k1"}`, p(), nil},
		{"no iat, exp in an hour", h, p("iat", "-"), nil},
		{"iat 30 s ahead (inside the leeway)", h, p("iat", at(30*time.Second)), nil},
		{"nbf now", h, p("nbf", at(0)), nil},
		{"lifetime exactly the maximum", h, p("exp", at(day)), nil},
		{"lifetime exactly the maximum, issued an hour ago", h, p("iat", at(-time.Hour), "exp", at(day-time.Hour)), nil},
		{"no iat, exp exactly the maximum from now", h, p("iat", "-", "exp", at(day)), nil},
		{"whitespace around a date", h, strings.Replace(p(), `"exp":`, `"exp" :  `, 1), nil},
		{"duplicate name nested in an unread claim", h, p("ext", `{"a":1,"a":2}`), nil},
		{"aud as an array", h, p("aud", `["jt-aud","other"]`), nil},

		// crit (RFC 7515 §4.1.11): no extension is understood.
		{"crit naming a registered claim", `{"alg":"ES256","crit":["exp"],"exp":1}`, p(), auth.ErrJWTCrit},
		{"crit b64 (RFC 7797)", `{"alg":"ES256","b64":false,"crit":["b64"]}`, p(), auth.ErrJWTCrit},
		{"crit naming an unknown extension", `{"alg":"ES256","crit":["x-hsrc"],"x-hsrc":true}`, p(), auth.ErrJWTCrit},
		{"crit empty list (malformed)", `{"alg":"ES256","crit":[]}`, p(), auth.ErrJWTCrit},
		{"crit a string (malformed)", `{"alg":"ES256","crit":"exp"}`, p(), auth.ErrJWTCrit},
		{"crit null (malformed)", `{"alg":"ES256","crit":null}`, p(), auth.ErrJWTCrit},

		// Duplicate header parameters.
		{"alg twice", `{"alg":"ES256","alg":"ES256"}`, p(), auth.ErrJWTDuplicateHeader},
		{"alg none then ES256", `{"alg":"none","alg":"ES256"}`, p(), auth.ErrJWTDuplicateHeader},
		{"alg twice, one escaped", `{"alg":"ES256","\u0061lg":"ES256"}`, p(), auth.ErrJWTDuplicateHeader},
		{"typ twice", `{"alg":"ES256","typ":"JWT","typ":"at+jwt"}`, p(), auth.ErrJWTDuplicateHeader},
		{"header with trailing data", `{"alg":"ES256"} {}`, p(), auth.ErrJWTMalformed},
		{"header an array", `["ES256"]`, p(), auth.ErrJWTMalformed},

		// iat in the future beyond the leeway.
		{"iat 31 s ahead", h, p("iat", at(31*time.Second)), auth.ErrJWTIssuedInFuture},
		{"iat an hour ahead", h, p("iat", at(time.Hour), "exp", at(2*time.Hour)), auth.ErrJWTIssuedInFuture},

		// Dates that are not JSON integers.
		{"exp a string", h, p("exp", `"`+at(time.Hour)+`"`), auth.ErrJWTDateNotInteger},
		{"nbf a string", h, p("nbf", `"`+at(0)+`"`), auth.ErrJWTDateNotInteger},
		{"iat a string", h, p("iat", `"`+at(0)+`"`), auth.ErrJWTDateNotInteger},
		{"exp in exponent form", h, p("exp", "1.8000036e9"), auth.ErrJWTDateNotInteger},
		{"exp with a fraction", h, p("exp", at(time.Hour)+".5"), auth.ErrJWTDateNotInteger},
		{"exp with .0", h, p("exp", at(time.Hour)+".0"), auth.ErrJWTDateNotInteger},
		{"iat in exponent form", h, p("iat", "1.8e9"), auth.ErrJWTDateNotInteger},
		{"nbf with a fraction", h, p("nbf", at(0)+".5"), auth.ErrJWTDateNotInteger},
		{"exp true", h, p("exp", "true"), auth.ErrJWTDateNotInteger},
		{"iat false", h, p("iat", "false"), auth.ErrJWTDateNotInteger},
		{"nbf true", h, p("nbf", "true"), auth.ErrJWTDateNotInteger},
		{"exp null", h, p("exp", "null"), auth.ErrJWTDateNotInteger},
		{"iat null", h, p("iat", "null"), auth.ErrJWTDateNotInteger},
		{"nbf null", h, p("nbf", "null"), auth.ErrJWTDateNotInteger},
		{"exp an object", h, p("exp", `{"t":1}`), auth.ErrJWTDateNotInteger},
		{"exp an array", h, p("exp", `[`+at(time.Hour)+`]`), auth.ErrJWTDateNotInteger},
		{"exp negative", h, p("exp", "-1"), auth.ErrJWTDateNotInteger},
		{"exp past year 9999", h, p("exp", "253402300800"), auth.ErrJWTDateNotInteger},
		{"exp 1e400", h, p("exp", "1e400"), auth.ErrJWTDateNotInteger},

		// Lifetime over the maximum (24 h by default).
		{"lifetime the maximum + 1 s", h, p("exp", at(day+time.Second)), auth.ErrJWTLifetime},
		{"no iat, exp the maximum + 1 s from now", h, p("iat", "-", "exp", at(day+time.Second)), auth.ErrJWTLifetime},
		{"issued two days ago, expiring in an hour", h, p("iat", at(-2*day), "exp", at(time.Hour)), auth.ErrJWTLifetime},
		{"exp at year 9999", h, p("exp", "253402300799"), auth.ErrJWTLifetime},

		// Duplicate claims.
		{"sub twice", h, p("sub", `"ops","sub":"admin"`), auth.ErrJWTDuplicateClaim},
		{"accounts twice", h, p("accounts", `["acct_jt"],"accounts":["acct_other"]`), auth.ErrJWTDuplicateClaim},
		{"permissions twice", h, p("permissions", `[],"permissions":["account:api:key:create"]`), auth.ErrJWTDuplicateClaim},
		{"exp twice", h, p("exp", at(time.Hour)+`,"exp":`+at(2*time.Hour)), auth.ErrJWTDuplicateClaim},
		{"mode twice", h, p("mode", `"test","mode":"live"`), auth.ErrJWTDuplicateClaim},
		{"unread claim twice", h, p("x", `1,"x":2`), auth.ErrJWTDuplicateClaim},
		{"sub twice, one escaped", h, p("sub", `"ops","s\u0075b":"admin"`), auth.ErrJWTDuplicateClaim},
		{"sub and SUB", h, p("SUB", `"admin"`), auth.ErrJWTDuplicateClaim},
		{"sub and ſub (long s)", h, p("ſub", `"admin"`), auth.ErrJWTDuplicateClaim},
		{"Accounts instead of accounts", h, strings.Replace(p(), `"accounts"`, `"Accounts"`, 1), auth.ErrJWTClaimCase},

		// Other payload shapes.
		{"payload an array", h, `["ops"]`, auth.ErrJWTMalformed},
		{"payload null", h, `null`, auth.ErrJWTMalformed},
		{"accounts a string", h, p("accounts", `"acct_jt"`), auth.ErrJWTClaimType},

		// The checks that were there before.
		{"expired", h, p("iat", at(-2*time.Hour), "exp", at(-time.Hour)), auth.ErrTokenExpired},
		{"not yet valid", h, p("nbf", at(time.Hour), "exp", at(2*time.Hour)), auth.ErrTokenExpired},
		{"no exp", h, p("exp", "-"), jwt.ErrTokenRequiredClaimMissing},
		{"wrong issuer", h, p("iss", `"evil"`), jwt.ErrTokenInvalidIssuer},
		{"wrong audience", h, p("aud", `"someone-else"`), jwt.ErrTokenInvalidAudience},
		{"no sub", h, p("sub", "-"), auth.ErrJWTNoSubject},
		{"alg none", `{"alg":"none"}`, p(), jwt.ErrTokenSignatureInvalid},
		{"alg HS256", `{"alg":"HS256"}`, p(), jwt.ErrTokenSignatureInvalid},
	}
}

// TestJWTStrict runs every case through the verifier and through the
// authenticator: an accepted token is a principal; a refused one is a 401
// whose failure detail names the rule and holds nothing of the token.
func TestJWTStrict(t *testing.T) {
	kit := newJTKit(t)
	v := kit.verifier(0) // 0: the default 24 h
	a := &auth.Authenticator{JWT: v, Now: func() time.Time { return jtNow }}
	for _, tc := range jtCases() {
		t.Run(tc.name, func(t *testing.T) {
			token := kit.sign(tc.header, tc.payload)
			c, err := v.Verify(token)
			if tc.want == nil {
				if err != nil || c == nil || c.Subject != "ops" {
					t.Fatalf("refused (%v), want accepted", err)
				}
			} else if !errors.Is(err, tc.want) || c != nil {
				t.Fatalf("error %v, want %v", err, tc.want)
			}

			p, err := a.Authenticate(context.Background(), "Bearer "+token, "192.0.2.1")
			if tc.want == nil {
				if err != nil || p.Subject != "jwt:ops" {
					t.Fatalf("Authenticate: %+v, %v", p, err)
				}
				return
			}
			var f *auth.Failure
			var ae *apierr.Error
			if p != nil || !errors.As(err, &f) || !errors.As(err, &ae) {
				t.Fatalf("Authenticate: %+v, %v; want an auth failure", p, err)
			}
			wantReason, wantCode := auth.ReasonJWTInvalid, api.CodeInvalidCredentials
			switch {
			case errors.Is(tc.want, auth.ErrTokenExpired):
				wantReason, wantCode = auth.ReasonExpired, api.CodeExpiredCredentials
			case errors.Is(tc.want, auth.ErrJWTMalformed) && f.Reason == auth.ReasonMalformed:
				// A header that is no JSON object with an alg is not even
				// taken for a JWT (keys.Classify).
				wantReason = auth.ReasonMalformed
			}
			if f.Reason != wantReason || ae.Status != 401 || ae.Code != wantCode {
				t.Fatalf("reason %q, %d %d; want %q, 401 %d", f.Reason, ae.Status, ae.Code, wantReason, wantCode)
			}
			if wantReason == auth.ReasonJWTInvalid && f.Detail == "" {
				t.Fatal("no detail for the log")
			}
			for _, seg := range strings.Split(token, ".") {
				if len(seg) > 8 && (strings.Contains(f.Detail, seg) || strings.Contains(ae.Message, seg)) {
					t.Fatalf("detail %q or message %q carries part of the token", f.Detail, ae.Message)
				}
			}
			for _, value := range []string{"admin", "acct_other", "evil", "someone-else"} {
				if strings.Contains(f.Detail, value) {
					t.Fatalf("detail %q carries a claim value", f.Detail)
				}
			}
		})
	}
}

// TestJWTStrictDetail: the log detail says which rule refused the token.
func TestJWTStrictDetail(t *testing.T) {
	kit := newJTKit(t)
	a := &auth.Authenticator{JWT: kit.verifier(0), Now: func() time.Time { return jtNow }}
	for _, tc := range []struct{ header, payload, want string }{
		{`{"alg":"ES256","crit":["exp"]}`, jtPayload(), "crit"},
		{jtHeader, jtPayload("iat", at(time.Hour), "exp", at(2*time.Hour)), "iat is in the future"},
		{jtHeader, jtPayload("exp", `"`+at(time.Hour)+`"`), "must be JSON integers"},
		{jtHeader, jtPayload("exp", at(25*time.Hour)), "lifetime"},
		{jtHeader, jtPayload("sub", `"ops","sub":"x"`), "duplicate claim"},
		{`{"alg":"ES256","alg":"ES256"}`, jtPayload(), "duplicate header"},
	} {
		_, err := a.Authenticate(context.Background(), "Bearer "+kit.sign(tc.header, tc.payload), "")
		var f *auth.Failure
		if !errors.As(err, &f) || !strings.Contains(f.Detail, tc.want) {
			t.Errorf("%s / %s: failure %+v, want detail containing %q", tc.header, tc.payload, f, tc.want)
		}
	}
}

// TestJWTStrictOrder: the header is judged before the signature (no
// signature work for a token with crit), the payload only after it (an
// unsigned payload's shape tells an attacker nothing).
func TestJWTStrictOrder(t *testing.T) {
	kit, other := newJTKit(t), newJTKit(t)
	v := kit.verifier(0)
	if _, err := v.Verify(other.sign(`{"alg":"ES256","crit":["exp"]}`, jtPayload())); !errors.Is(err, auth.ErrJWTCrit) {
		t.Errorf("crit under a foreign signature: %v, want ErrJWTCrit before the signature check", err)
	}
	if _, err := v.Verify(other.sign(jtHeader, jtPayload("sub", `"ops","sub":"x"`))); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("duplicate claim under a foreign signature: %v, want the signature refused first", err)
	}
	if _, err := v.Verify(other.sign(jtHeader, jtPayload())); !errors.Is(err, jwt.ErrTokenSignatureInvalid) {
		t.Errorf("foreign signature: %v", err)
	}
	for _, tok := range []string{"a.b", "a.b.c.d", "!!.e30.x", b64(jtHeader) + ".e30"} {
		if _, err := v.Verify(tok); err == nil {
			t.Errorf("%q accepted", tok)
		}
	}
}

// TestJWTMaxLifetime: the configured maximum, not the default, bounds the lifetime.
func TestJWTMaxLifetime(t *testing.T) {
	kit := newJTKit(t)
	v := kit.verifier(time.Hour)
	for _, tc := range []struct {
		payload string
		want    error
	}{
		{jtPayload("exp", at(time.Hour)), nil},
		{jtPayload("exp", at(time.Hour+time.Second)), auth.ErrJWTLifetime},
		{jtPayload("iat", "-", "exp", at(time.Hour)), nil},
		{jtPayload("iat", "-", "exp", at(time.Hour+time.Second)), auth.ErrJWTLifetime},
		{jtPayload("iat", at(-30*time.Minute), "exp", at(31*time.Minute)), auth.ErrJWTLifetime},
	} {
		if _, err := v.Verify(kit.sign(jtHeader, tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.payload, err, tc.want)
		}
	}
	if _, err := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{
		PublicKeyFile: kit.pemFile, Issuer: "i", Audience: "a", MaxLifetime: -time.Second,
	}); err == nil {
		t.Error("negative maximum lifetime accepted")
	}
}
