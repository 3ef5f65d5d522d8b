package auth

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// JWTConfig says where the auth provider's keys come from and what to expect in tokens.
type JWTConfig struct {
	JWKSURL       string // the provider's JWKS endpoint, refreshed in the background
	PublicKeyFile string // a PEM public key, for local use
	Issuer        string
	Audience      string
}

// Claims are the JWT claims the service reads.
type Claims struct {
	jwt.RegisteredClaims
	Accounts    []string `json:"accounts"`
	Permissions []string `json:"permissions"`
	Mode        string   `json:"mode"`
}

// JWTVerifier checks signature, issuer, audience, expiry and not-before.
type JWTVerifier struct {
	parser  *jwt.Parser
	keyFunc jwt.Keyfunc
	closeFn func()
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
	v := &JWTVerifier{closeFn: func() {}}
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
		jwt.WithIssuer(cfg.Issuer),
		jwt.WithAudience(cfg.Audience),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(30*time.Second),
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

// Verify parses and checks a JWT.
func (v *JWTVerifier) Verify(token string) (*Claims, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, v.keyFunc)
	if errors.Is(err, jwt.ErrTokenExpired) || errors.Is(err, jwt.ErrTokenNotValidYet) {
		return nil, ErrTokenExpired
	}
	if err != nil {
		return nil, err
	}
	if c.Subject == "" {
		return nil, errors.New("jwt: no sub claim")
	}
	return &c, nil
}

// Close stops the JWKS refresh.
func (v *JWTVerifier) Close() {
	if v != nil {
		v.closeFn()
	}
}
