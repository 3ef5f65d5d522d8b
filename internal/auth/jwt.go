package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// DefaultJWTMaxLifetime is the longest lifetime a JWT may claim unless
// JWTConfig.MaxLifetime says otherwise (HSRCPAY_JWT_MAX_LIFETIME).
const DefaultJWTMaxLifetime = 24 * time.Hour

// jwtLeeway absorbs clock skew between the provider and this service.
const jwtLeeway = 30 * time.Second

// maxNumericDate is 9999-12-31T23:59:59Z: a larger exp, nbf or iat is not a date.
const maxNumericDate = 253402300799

// JWTConfig says where the auth provider's keys come from and what to expect in tokens.
type JWTConfig struct {
	JWKSURL       string // the provider's JWKS endpoint, refreshed in the background
	PublicKeyFile string // a PEM public key, for local use
	Issuer        string
	Audience      string
	// MaxLifetime bounds exp - iat (exp - now when there is no iat); 0 means
	// DefaultJWTMaxLifetime.
	MaxLifetime time.Duration
	// Now is the clock for exp, nbf, iat and the lifetime; nil means time.Now.
	Now func() time.Time
}

// Claims are the JWT claims the service reads.
type Claims struct {
	jwt.RegisteredClaims
	Accounts    []string `json:"accounts"`
	Permissions []string `json:"permissions"`
	Mode        string   `json:"mode"`
}

// readClaims are the payload names Claims decodes. encoding/json matches them
// case-insensitively, so a payload spelling one differently ("SUB", "Accounts")
// is refused rather than read.
var readClaims = []string{"iss", "sub", "aud", "exp", "nbf", "iat", "jti", "accounts", "permissions", "mode"}

// Why a JWT is refused beyond what golang-jwt checks. Each is a fixed text:
// none carries a claim value or any part of the token.
var (
	ErrJWTMalformed       = errors.New("jwt: malformed header or payload")
	ErrJWTCrit            = errors.New("jwt: crit header parameter (no extension is understood)")
	ErrJWTDuplicateHeader = errors.New("jwt: duplicate header parameter")
	ErrJWTDuplicateClaim  = errors.New("jwt: duplicate claim name")
	ErrJWTClaimCase       = errors.New("jwt: claim name differs from a known claim only in case")
	ErrJWTClaimType       = errors.New("jwt: a claim has the wrong type")
	ErrJWTDateNotInteger  = errors.New("jwt: exp, nbf and iat must be JSON integers (seconds, 0 to 253402300799)")
	ErrJWTIssuedInFuture  = errors.New("jwt: iat is in the future")
	ErrJWTLifetime        = errors.New("jwt: lifetime (exp - iat, or exp - now without iat) over the maximum")
	ErrJWTNoSubject       = errors.New("jwt: no sub claim")
)

// JWTVerifier checks a JWT's shape, signature, issuer, audience, expiry,
// not-before, issued-at and lifetime.
type JWTVerifier struct {
	parser      *jwt.Parser    // alg and signature
	validator   *jwt.Validator // registered claims, after the raw payload checks
	keyFunc     jwt.Keyfunc
	closeFn     func()
	now         func() time.Time
	maxLifetime time.Duration
}

var asymmetric = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// NewJWTVerifier returns nil, nil when no provider is configured: JWTs are then rejected.
func NewJWTVerifier(ctx context.Context, cfg JWTConfig) (*JWTVerifier, error) {
	if cfg.JWKSURL == "" && cfg.PublicKeyFile == "" {
		return nil, nil
	}
	if cfg.Issuer == "" || cfg.Audience == "" {
		return nil, errors.New("jwt: issuer and audience must be set with a JWKS URL or public key file")
	}
	if cfg.MaxLifetime < 0 {
		return nil, errors.New("jwt: negative maximum lifetime")
	}
	v := &JWTVerifier{closeFn: func() {}, now: cfg.Now, maxLifetime: cfg.MaxLifetime}
	if v.now == nil {
		v.now = time.Now
	}
	if v.maxLifetime == 0 {
		v.maxLifetime = DefaultJWTMaxLifetime
	}
	methods := asymmetric
	switch {
	case cfg.JWKSURL != "":
		kctx, cancel := context.WithCancel(ctx)
		kf, err := keyfunc.NewDefaultCtx(kctx, []string{cfg.JWKSURL})
		if err != nil {
			cancel()
			return nil, fmt.Errorf("jwt: JWKS %s: %w", cfg.JWKSURL, err)
		}
		v.keyFunc, v.closeFn = kf.Keyfunc, cancel
	default:
		pem, err := os.ReadFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("jwt: public key file: %w", err)
		}
		key, m, err := parsePublicKey(pem)
		if err != nil {
			return nil, fmt.Errorf("jwt: public key file %s: %w", cfg.PublicKeyFile, err)
		}
		methods = m
		v.keyFunc = func(*jwt.Token) (any, error) { return key, nil }
	}
	v.parser = jwt.NewParser(
		jwt.WithValidMethods(methods), // never "none", never HMAC with a public key
		// The payload is decoded and its claims validated (v.validator) only
		// once the raw payload has passed checkPayload: a string or float
		// date is refused as such rather than read as a number.
		jwt.WithoutClaimsValidation(),
	)
	v.validator = jwt.NewValidator(
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(), // iat later than now + leeway is refused
		jwt.WithLeeway(jwtLeeway),
		jwt.WithTimeFunc(v.now),
	)
	return v, nil
}

func parsePublicKey(pem []byte) (any, []string, error) {
	if k, err := jwt.ParseRSAPublicKeyFromPEM(pem); err == nil {
		return k, []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, nil
	}
	if k, err := jwt.ParseECPublicKeyFromPEM(pem); err == nil {
		return k, []string{"ES256", "ES384", "ES512"}, nil
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(pem); err == nil {
		return k, []string{"EdDSA"}, nil
	}
	return nil, nil, errors.New("not an RSA, ECDSA or Ed25519 public key in PEM")
}

// ErrTokenExpired marks a JWT outside its validity window.
var ErrTokenExpired = errors.New("jwt: expired or not yet valid")

// Verify parses and checks a JWT, in this order:
//  1. header, before any signature work: one JSON object, no parameter twice, no crit;
//  2. alg (asymmetric, the configured key's) and signature (golang-jwt), the
//     payload still undecoded;
//  3. raw payload: one JSON object, no claim twice (nor a claim the service
//     reads spelt in another case), exp/nbf/iat JSON integers;
//  4. the claims' types; iss, aud, exp (required), nbf, and iat not in the
//     future (exp, nbf, iat with 30 s leeway);
//  5. lifetime: exp - iat (exp - now without iat) at most the maximum;
//  6. sub present.
func (v *JWTVerifier) Verify(token string) (*Claims, error) {
	header, ok := jwtHeader(token)
	if !ok {
		return nil, ErrJWTMalformed
	}
	if err := checkHeader(header); err != nil {
		return nil, err
	}
	var p signedPayload
	if _, err := v.parser.ParseWithClaims(token, &p, v.keyFunc); err != nil {
		return nil, err
	}
	// The signature holds: the payload is the provider's. Hold it to our rules
	// before reading anything from it.
	if err := checkPayload(p.raw); err != nil {
		return nil, err
	}
	var c Claims
	if err := json.Unmarshal(p.raw, &c); err != nil {
		return nil, ErrJWTClaimType
	}
	if err := v.validator.Validate(&c); err != nil {
		switch {
		case errors.Is(err, jwt.ErrTokenExpired), errors.Is(err, jwt.ErrTokenNotValidYet):
			return nil, ErrTokenExpired
		case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
			return nil, ErrJWTIssuedInFuture
		}
		return nil, err
	}
	start := v.now()
	if c.IssuedAt != nil {
		start = c.IssuedAt.Time
	}
	if c.ExpiresAt.Sub(start) > v.maxLifetime {
		return nil, ErrJWTLifetime
	}
	if c.Subject == "" {
		return nil, ErrJWTNoSubject
	}
	return &c, nil
}

// signedPayload takes the payload from golang-jwt undecoded; the parser runs
// without claims validation, so its getters are never asked.
type signedPayload struct{ raw []byte }

func (p *signedPayload) UnmarshalJSON(b []byte) error {
	p.raw = append(p.raw[:0], b...)
	return nil
}
func (*signedPayload) GetExpirationTime() (*jwt.NumericDate, error) { return nil, nil }
func (*signedPayload) GetIssuedAt() (*jwt.NumericDate, error)       { return nil, nil }
func (*signedPayload) GetNotBefore() (*jwt.NumericDate, error)      { return nil, nil }
func (*signedPayload) GetIssuer() (string, error)                   { return "", nil }
func (*signedPayload) GetSubject() (string, error)                  { return "", nil }
func (*signedPayload) GetAudience() (jwt.ClaimStrings, error)       { return nil, nil }

// jwtHeader decodes the header of a compact JWS (three segments); the rest
// is left to golang-jwt.
func jwtHeader(token string) ([]byte, bool) {
	h, rest, ok1 := strings.Cut(token, ".")
	_, sig, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.Contains(sig, ".") {
		return nil, false
	}
	header, err := base64.RawURLEncoding.DecodeString(h)
	return header, err == nil
}

// checkHeader refuses a header that is not one JSON object, names a parameter
// twice, or has crit (RFC 7515 §4.1.11: this service understands no
// extension, so any crit, well-formed or not, is one it cannot honour).
func checkHeader(b []byte) error {
	seen := map[string]bool{}
	return walkObject(b, func(name string, _ json.RawMessage) error {
		if seen[name] {
			return ErrJWTDuplicateHeader
		}
		seen[name] = true
		if name == "crit" {
			return ErrJWTCrit
		}
		return nil
	})
}

// checkPayload refuses a payload that is not one JSON object, names a claim
// twice, spells a claim the service reads in another case, or has an exp,
// nbf or iat that is not a JSON integer from 0 to 9999-12-31T23:59:59Z.
// golang-jwt would otherwise read the last of two claims, the strings
// "1700000000" and floats such as 1.7e9 as dates, and null as absent.
func checkPayload(b []byte) error {
	seen := map[string]bool{}
	return walkObject(b, func(name string, value json.RawMessage) error {
		// Claims is decoded with encoding/json, which matches names without
		// regard to case: "sub" and "SUB" are the same claim to it.
		folded := foldName(name)
		if seen[folded] {
			return ErrJWTDuplicateClaim
		}
		seen[folded] = true
		for _, known := range readClaims {
			if folded == foldName(known) && name != known {
				return ErrJWTClaimCase
			}
		}
		switch name {
		case "exp", "nbf", "iat":
			n, err := strconv.ParseUint(string(bytes.TrimSpace(value)), 10, 64)
			if err != nil || n > maxNumericDate {
				return ErrJWTDateNotInteger
			}
		}
		return nil
	})
}

// walkObject calls fn for each top-level member of the JSON object b, in
// order, with the member's name unescaped and its raw value. Anything but
// exactly one object is ErrJWTMalformed.
func walkObject(b []byte, fn func(name string, value json.RawMessage) error) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return ErrJWTMalformed
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return ErrJWTMalformed
		}
		name, ok := t.(string)
		if !ok {
			return ErrJWTMalformed
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return ErrJWTMalformed
		}
		if err := fn(name, value); err != nil {
			return err
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return ErrJWTMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return ErrJWTMalformed // anything after the object
	}
	return nil
}

// foldName folds a name the way encoding/json matches struct fields
// (upper(lower(r)) for each rune), so "ſub" (long s) folds to "SUB" as "sub" does.
func foldName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r < utf8.RuneSelf {
			if 'a' <= r && r <= 'z' {
				r -= 'a' - 'A'
			}
			b.WriteRune(r)
			continue
		}
		b.WriteRune(unicode.ToUpper(unicode.ToLower(r)))
	}
	return b.String()
}

// jwtRefusal names why Verify refused a token, for the auth failure log: a
// fixed phrase, never a claim value, key id or part of the token.
func jwtRefusal(err error) string {
	for _, known := range []error{
		ErrJWTMalformed, ErrJWTCrit, ErrJWTDuplicateHeader, ErrJWTDuplicateClaim, ErrJWTClaimCase,
		ErrJWTClaimType, ErrJWTDateNotInteger, ErrJWTIssuedInFuture, ErrJWTLifetime, ErrJWTNoSubject, ErrTokenExpired,
		jwt.ErrTokenSignatureInvalid, jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidIssuer, jwt.ErrTokenInvalidAudience,
		jwt.ErrTokenInvalidClaims,
	} {
		if errors.Is(err, known) {
			return strings.TrimPrefix(known.Error(), "jwt: ")
		}
	}
	return "invalid token"
}

// Close stops the JWKS refresh.
func (v *JWTVerifier) Close() {
	if v != nil {
		v.closeFn()
	}
}
