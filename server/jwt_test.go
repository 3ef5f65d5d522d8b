package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/store"
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
		wantAPIError(t, err, 403, oapi.CodeAccountForbidden)
	})
	t.Run("regenerate on a foreign account is not found", func(t *testing.T) {
		other := env.Bootstrap("acct_third")[store.Sandbox]
		tok := j.Sign(t, j.Claims("ops", []string{acct}, []string{"account:api:key:update"}, "test"))
		_, err := env.Client(tok).RegenerateAPIKey(ctx, other.SecretID)
		wantAPIError(t, err, 404, oapi.CodeKeyNotFound)
	})
	t.Run("lacks the permission", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops", []string{acct}, []string{"payment:read"}, "test"))
		_, err := env.Client(tok).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
		wantAPIError(t, err, 403, oapi.CodePermissionDenied)
	})
	t.Run("escalation", func(t *testing.T) {
		tok := j.Sign(t, j.Claims("ops", []string{acct}, create, "test"))
		_, err := env.Client(tok).CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{"refund": {"create"}}))
		wantAPIError(t, err, 403, oapi.CodePrivilegeEscalation)
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
		code  oapi.ErrorCode
	}{
		{"expired", j.Sign(t, expired), oapi.CodeExpiredCredentials},
		{"not yet valid", j.Sign(t, notYet), oapi.CodeExpiredCredentials},
		{"no exp claim", j.Sign(t, noExp), oapi.CodeInvalidCredentials},
		{"wrong issuer", j.Sign(t, wrongIss), oapi.CodeInvalidCredentials},
		{"wrong audience", j.Sign(t, wrongAud), oapi.CodeInvalidCredentials},
		{"no subject", j.Sign(t, noSub), oapi.CodeInvalidCredentials},
		{"unknown mode", j.Sign(t, badMode), oapi.CodeInvalidCredentials},
		{"alg none", noneHeader + "." + parts[1] + ".", oapi.CodeInvalidCredentials},
		{"HS256 keyed with the public key", sign(jwt.SigningMethodHS256, good, pubPEM), oapi.CodeInvalidCredentials},
		{"RS256 from a key of the wrong type", sign(jwt.SigningMethodRS256, good, rsaKey), oapi.CodeInvalidCredentials},
		{"ES256 from another key", sign(jwt.SigningMethodES256, good, otherEC), oapi.CodeInvalidCredentials},
		{"tampered payload", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"ops","accounts":["acct_other"]}`)) + "." + parts[2], oapi.CodeInvalidCredentials},
		{"JWT-shaped with sk_ inside", noneHeader + ".sk_test_abc.", oapi.CodeInvalidCredentials},
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
	m := env.Bootstrap(acct)[store.Sandbox]
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
		code        oapi.ErrorCode
	}{
		{"checksum broken in the random part", flip(m.Secret, 12), oapi.CodeInvalidCredentials},
		{"checksum broken in the checksum", flip(m.Secret, len(m.Secret)-1), oapi.CodeInvalidCredentials},
		{"truncated", m.Secret[:len(m.Secret)-1], oapi.CodeInvalidCredentials},
		{"extended", m.Secret + "a", oapi.CodeInvalidCredentials},
		{"sk_ past the 32nd character", strings.Repeat("x", 33) + "sk_test_" + m.Secret[8:], oapi.CodeInvalidCredentials},
		{"prefixed sk_ within 32 characters", "hsrc_" + m.Secret, oapi.CodeInvalidCredentials},
		{"neither key nor JWT", "hello", oapi.CodeInvalidCredentials},
		{"publishable prefix on a secret", "pk_" + m.Secret[3:], oapi.CodeInvalidCredentials},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := env.Client(tc.token).RegenerateAPIKey(ctx, m.SecretID)
			wantAPIError(t, err, 401, tc.code)
		})
	}
}
