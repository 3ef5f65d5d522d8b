package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/store/sqlite"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

func TestJWTAuthentication(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	env.Bootstrap(acct)
	env.Bootstrap("acct_other")
	j := env.JWT
	create := []string{"account:api:key:create", "payment:read"}

	t.Run("valid token acts on its granted account, in the mode it names", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops@example.com", []string{acct}, create, "test"))
		k, err := env.Client(tok).CreateAPIKey(ctx, acct, newKeyReq("from jwt", client.Permissions{"payment": {"read"}}))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(k.Key, "sk_test_") {
			t.Fatalf("mode test issued %q", k.Key)
		}
		live := j.Sign(t, j.Claims("ops@example.com", []string{acct}, create, ""))
		k, err = env.Client(live).CreateAPIKey(ctx, acct, newKeyReq("from jwt", client.Permissions{}))
		if err != nil || !strings.HasPrefix(k.Key, "sk_live_") {
			t.Fatalf("default mode should be live: %v %v", k, err)
		}
	})
	t.Run("not granted the account", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops", []string{acct}, create, "test"))
		_, err := env.Client(tok).CreateAPIKey(ctx, "acct_other", newKeyReq("x", client.Permissions{}))
		wantAPIError(t, err, 403, client.CodeAccountForbidden)
	})
	t.Run("regenerate on a foreign account is not found", func(t *testing.T) {
		other := env.Bootstrap("acct_third")[apikey.Sandbox]
		tok := j.Sign(t, j.Claims("ops", []string{acct}, []string{"account:api:key:update"}, "test"))
		_, err := env.Client(tok).RegenerateAPIKey(ctx, other.SecretID)
		wantAPIError(t, err, 404, client.CodeKeyNotFound)
	})
	t.Run("lacks the permission", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops", []string{acct}, []string{"payment:read"}, "test"))
		_, err := env.Client(tok).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
		wantAPIError(t, err, 403, client.CodePermissionDenied)
	})
	t.Run("escalation", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops", []string{acct}, create, "test"))
		_, err := env.Client(tok).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{"refund": {"create"}}))
		wantAPIError(t, err, 403, client.CodePrivilegeEscalation)
	})

	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	otherEC, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	pubPEM, _ := os.ReadFile(j.PublicKeyFile)
	expired := j.Claims("ops", []string{acct}, create, "test")
	expired.ExpiresAt = jwt.NewNumericDate(time.Now().Add(-time.Hour))
	notYet := j.Claims("ops", []string{acct}, create, "test")
	notYet.NotBefore = jwt.NewNumericDate(time.Now().Add(time.Hour))
	noExp := j.Claims("ops", []string{acct}, create, "test")
	noExp.ExpiresAt = nil
	wrongIss := j.Claims("ops", []string{acct}, create, "test")
	wrongIss.Issuer = "https://evil.example/"
	wrongAud := j.Claims("ops", []string{acct}, create, "test")
	wrongAud.Audience = jwt.ClaimStrings{"someone-else"}
	noSub := j.Claims("", []string{acct}, create, "test")
	badMode := j.Claims("ops", []string{acct}, create, "staging")
	good := j.Claims("ops", []string{acct}, create, "test")
	sign := func(m jwt.SigningMethod, c jwt.Claims, key any) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	validTok := j.Sign(t, good)
	parts := strings.Split(validTok, ".")
	noneHeader := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`))
	for _, tc := range []struct {
		name  string
		token string
		code  client.ErrorCode
	}{
		{"expired", j.Sign(t, expired), client.CodeExpiredCredentials},
		{"not yet valid", j.Sign(t, notYet), client.CodeExpiredCredentials},
		{"no exp claim", j.Sign(t, noExp), client.CodeInvalidCredentials},
		{"wrong issuer", j.Sign(t, wrongIss), client.CodeInvalidCredentials},
		{"wrong audience", j.Sign(t, wrongAud), client.CodeInvalidCredentials},
		{"no subject", j.Sign(t, noSub), client.CodeInvalidCredentials},
		{"unknown mode", j.Sign(t, badMode), client.CodeInvalidCredentials},
		{"alg none", noneHeader + "." + parts[1] + ".", client.CodeInvalidCredentials},
		{"HS256 keyed with the public key", sign(jwt.SigningMethodHS256, good, pubPEM), client.CodeInvalidCredentials},
		{"RS256 from a key of the wrong type", sign(jwt.SigningMethodRS256, good, rsaKey), client.CodeInvalidCredentials},
		{"ES256 from another key", sign(jwt.SigningMethodES256, good, otherEC), client.CodeInvalidCredentials},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"ops","accounts":["acct_other"]}`)) + "." + parts[2], client.CodeInvalidCredentials},
		{"JWT-shaped with sk_ inside", noneHeader + ".sk_test_abc.", client.CodeInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client(tc.token).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
			wantAPIError(t, err, 401, tc.code)
		})
	}
}

// TestKeyTokenClassification covers the key shapes the seeds describe.
func TestKeyTokenClassification(t *testing.T) {
	env := testenv.New(t, testenv.Config{})
	m := env.Bootstrap(acct)[apikey.Sandbox]
	flip := func(s string, i int) string {
		b := []byte(s)
		if b[i] == 'a' {
			b[i] = 'b'
		} else {
			b[i] = 'a'
		}
		return string(b)
	}
	for _, tc := range []struct {
		name, token string
		code        client.ErrorCode
	}{
		{"checksum broken in the random part", flip(m.Secret, 12), client.CodeInvalidCredentials},
		{"checksum broken in the checksum", flip(m.Secret, len(m.Secret)-1), client.CodeInvalidCredentials},
		{"truncated", m.Secret[:len(m.Secret)-1], client.CodeInvalidCredentials},
		{"extended", m.Secret + "a", client.CodeInvalidCredentials},
		{"sk_ past the 32nd character", strings.Repeat("x", 33) + "sk_test_" + m.Secret[8:], client.CodeInvalidCredentials},
		{"prefixed sk_ within 32 characters", "hsrc_" + m.Secret, client.CodeInvalidCredentials},
		{"neither key nor JWT", "hello", client.CodeInvalidCredentials},
		{"publishable prefix on a secret", "pk_" + m.Secret[3:], client.CodeInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client(tc.token).RegenerateAPIKey(ctx, m.SecretID)
			wantAPIError(t, err, 401, tc.code)
		})
	}
}

// TestJWTStrict is rule 10 end to end: tokens signed by the provider's key
// that break a strictness rule (crit, iat in the future, dates that are not
// JSON integers, a lifetime over HSRCPAY_JWT_MAX_LIFETIME, a claim or
// header parameter given twice) answer 401 40101 to a create they hold the
// permission for, and create nothing. The access log names the rule and
// never the token.
func TestJWTStrict(t *testing.T) {
	logs := &hxLockedBuffer{}
	env := testenv.New(t, testenv.Config{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	env.Bootstrap(acct)
	env.Bootstrap("acct_other")
	j := env.JWT
	signRaw := func(header, payload string) string {
		input := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
		sig, err := jwt.SigningMethodES256.Sign(input, j.Key)
		if err != nil {
			t.Fatal(err)
		}
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	now := time.Now().Unix()
	num := func(d time.Duration) string { return fmt.Sprint(now + int64(d/time.Second)) }
	// payload: a valid create-holding payload; iat and exp are raw JSON
	// ("" leaves iat out), extra is appended raw.
	payload := func(iat, exp, extra string) string {
		p := fmt.Sprintf(`{"iss":%q,"aud":%q,"sub":"ops","accounts":[%q],"permissions":["account:api:key:create","payment:read"],"mode":"test"`,
			j.Issuer, j.Audience, acct)
		if iat != "" {
			p += `,"iat":` + iat
		}
		return p + `,"exp":` + exp + extra + "}"
	}
	const es = `{"alg":"ES256","typ":"JWT"}`
	hour, day := num(time.Hour), num(24*time.Hour)

	countKeys := func() int {
		n := 0
		for _, m := range apikey.Modes {
			var c int
			if err := env.Store.(*sqlite.Store).DB(m).QueryRowContext(ctx, `SELECT count(*) FROM api_keys`).Scan(&c); err != nil {
				t.Fatal(err)
			}
			n += c
		}
		return n
	}

	// The hand-built token, unaltered, is accepted: the refusals below are the rules'.
	if _, err := env.Client(signRaw(es, payload(num(0), hour, ""))).CreateAPIKey(ctx, acct, newKeyReq("hand-built", client.Permissions{"payment": {"read"}})); err != nil {
		t.Fatalf("hand-built control token: %v", err)
	}
	if _, err := env.Client(signRaw(es, payload(num(0), day, ""))).CreateAPIKey(ctx, acct, newKeyReq("lifetime exactly 24h", client.Permissions{})); err != nil {
		t.Fatalf("lifetime exactly HSRCPAY_JWT_MAX_LIFETIME: %v", err)
	}
	before := countKeys()

	cases := []struct{ name, token, detail string }{
		{"crit", signRaw(`{"alg":"ES256","typ":"JWT","crit":["exp"]}`, payload(num(0), hour, "")), "crit"},
		{"crit malformed", signRaw(`{"alg":"ES256","crit":"exp"}`, payload(num(0), hour, "")), "crit"},
		{"alg twice", signRaw(`{"alg":"none","alg":"ES256"}`, payload(num(0), hour, "")), "duplicate header"},
		{"iat an hour in the future", signRaw(es, payload(num(time.Hour), num(2*time.Hour), "")), "iat is in the future"},
		{"iat a minute in the future", signRaw(es, payload(num(time.Minute), hour, "")), "iat is in the future"},
		{"exp a string", signRaw(es, payload(num(0), `"`+hour+`"`, "")), "JSON integers"},
		{"iat a string", signRaw(es, payload(`"`+num(0)+`"`, hour, "")), "JSON integers"},
		{"nbf a string", signRaw(es, payload(num(0), hour, `,"nbf":"`+num(0)+`"`)), "JSON integers"},
		{"exp with a fraction", signRaw(es, payload(num(0), hour+".5", "")), "JSON integers"},
		{"exp in exponent form", signRaw(es, payload(num(0), fmt.Sprintf("%.9e", float64(now+3600)), "")), "JSON integers"},
		{"iat a float", signRaw(es, payload(num(0)+".0", hour, "")), "JSON integers"},
		{"exp true", signRaw(es, payload(num(0), "true", "")), "JSON integers"},
		{"nbf null", signRaw(es, payload(num(0), hour, `,"nbf":null`)), "JSON integers"},
		{"lifetime 24h + 1s", signRaw(es, payload(num(0), num(24*time.Hour+time.Second), "")), "lifetime"},
		{"no iat, exp in 25h", signRaw(es, payload("", num(25*time.Hour), "")), "lifetime"},
		{"issued two days ago", signRaw(es, payload(num(-48*time.Hour), hour, "")), "lifetime"},
		{"sub twice", signRaw(es, payload(num(0), hour, `,"sub":"admin"`)), "duplicate claim"},
		{"accounts twice", signRaw(es, payload(num(0), hour, `,"accounts":["acct_other"]`)), "duplicate claim"},
		{"permissions twice", signRaw(es, payload(num(0), hour, `,"permissions":["account:api:key:create","refund:create"]`)), "duplicate claim"},
		{"exp twice", signRaw(es, payload(num(0), hour, `,"exp":`+num(30*24*time.Hour))), "duplicate claim"},
		{"sub and SUB", signRaw(es, payload(num(0), hour, `,"SUB":"admin"`)), "duplicate claim"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client(tc.token).CreateAPIKey(ctx, acct, newKeyReq("strict "+tc.name, client.Permissions{"payment": {"read"}}))
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
			_, err = env.Client(tc.token).CreateAPIKey(ctx, "acct_other", newKeyReq("strict "+tc.name, client.Permissions{}))
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
	}
	if after := countKeys(); after != before {
		t.Fatalf("%d keys created by refused tokens", after-before)
	}

	// Each refusal is logged with reason jwt_invalid and a detail naming the
	// rule; no line carries any part of a token.
	var lines []map[string]any
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines = lines[:0]
		for _, l := range strings.Split(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["auth_failure"] == "jwt_invalid" {
				lines = append(lines, m)
			}
		}
		if len(lines) >= 2*len(cases) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(lines) != 2*len(cases) {
		t.Fatalf("%d jwt_invalid log lines, want %d", len(lines), 2*len(cases))
	}
	for i, tc := range cases {
		for _, m := range lines[2*i : 2*i+2] {
			if d, _ := m["auth_failure_detail"].(string); !strings.Contains(d, tc.detail) {
				t.Errorf("%s: logged detail %q, want it to mention %q", tc.name, d, tc.detail)
			}
		}
	}
	all := logs.String()
	for _, tc := range cases {
		for _, seg := range strings.Split(tc.token, ".") {
			if strings.Contains(all, seg) {
				t.Errorf("%s: the log carries a segment of the token", tc.name)
			}
		}
	}
}
