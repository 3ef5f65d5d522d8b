// Package secretscan verifies the signatures of GitHub's secret scanning
// reports: GitHub signs each report's raw body with ECDSA P-256 / SHA-256
// (ASN.1, base64 in Github-Public-Key-Signature) by one of the public keys it
// publishes as {"public_keys":[{"key_identifier","key" (PEM),"is_current"}]},
// named in Github-Public-Key-Identifier. The keys come from a file or a URL;
// a URL is re-read periodically (Run) and, at most once per MinRefetch, when
// a report names a key id not known yet (GitHub rotates its keys).
package secretscan

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"
)

// Reasons a signature is refused (errors.Is): none is the server's fault.
var (
	ErrMissing    = errors.New("secret scanning signature headers missing")
	ErrMalformed  = errors.New("secret scanning signature is not base64")
	ErrUnknownKey = errors.New("secret scanning key identifier unknown")
	ErrBadSig     = errors.New("secret scanning signature does not verify")
)

// Defaults.
const (
	DefaultRefresh    = time.Hour
	DefaultMinRefetch = time.Minute
	maxKeysDocument   = 1 << 20
)

// Config says where the public keys are: File or URL, not both.
type Config struct {
	File string
	URL  string
	// Refresh is how often Run re-reads the URL (default DefaultRefresh).
	Refresh time.Duration
	// MinRefetch spaces the re-reads an unknown key id causes (default DefaultMinRefetch).
	MinRefetch time.Duration
	HTTP       *http.Client // default: 10 s timeout
	Logger     *slog.Logger
	Now        func() time.Time
}

// Keys holds GitHub's public keys.
type Keys struct {
	cfg Config

	mu        sync.RWMutex
	keys      map[string]*ecdsa.PublicKey
	fetching  sync.Mutex // one re-read at a time
	lastFetch time.Time
}

// Load reads the keys once; an unreadable or empty key document is an error
// (a server that would refuse every report should not start).
func Load(ctx context.Context, cfg Config) (*Keys, error) {
	if (cfg.File == "") == (cfg.URL == "") {
		return nil, errors.New("secretscan: set exactly one of File and URL")
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MinRefetch <= 0 {
		cfg.MinRefetch = DefaultMinRefetch
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	k := &Keys{cfg: cfg}
	if err := k.reload(ctx); err != nil {
		return nil, err
	}
	return k, nil
}

// Run re-reads a URL every Refresh until ctx ends (a file is read once). A
// failed re-read keeps the keys it had, and is logged.
func (k *Keys) Run(ctx context.Context) {
	if k.cfg.URL == "" {
		return
	}
	t := time.NewTicker(k.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := k.reload(ctx); err != nil && ctx.Err() == nil {
				k.cfg.Logger.Warn("secret scanning keys refresh failed; keeping the keys known", "err", err)
			}
		}
	}
}

// Verify checks that sig (base64 ASN.1 ECDSA) is keyID's signature over body.
func (k *Keys) Verify(ctx context.Context, keyID, sig string, body []byte) error {
	if keyID == "" || sig == "" {
		return ErrMissing
	}
	raw, err := base64.StdEncoding.DecodeString(sig)
	if err != nil || len(raw) == 0 {
		return ErrMalformed
	}
	pub := k.key(keyID)
	if pub == nil && k.cfg.URL != "" && k.refetchDue() {
		if err := k.reload(ctx); err != nil {
			k.cfg.Logger.Warn("secret scanning keys re-read for an unknown key id failed", "err", err)
		}
		pub = k.key(keyID)
	}
	if pub == nil {
		return ErrUnknownKey
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], raw) {
		return ErrBadSig
	}
	return nil
}

func (k *Keys) key(id string) *ecdsa.PublicKey {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[id]
}

// refetchDue claims the right to re-read now, at most once per MinRefetch:
// forged key ids must not turn into requests to the key URL.
func (k *Keys) refetchDue() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.cfg.Now()
	if !k.lastFetch.IsZero() && now.Sub(k.lastFetch) < k.cfg.MinRefetch {
		return false
	}
	k.lastFetch = now
	return true
}

func (k *Keys) reload(ctx context.Context) error {
	k.fetching.Lock()
	defer k.fetching.Unlock()
	var data []byte
	var err error
	if k.cfg.File != "" {
		data, err = os.ReadFile(k.cfg.File)
	} else {
		data, err = k.fetch(ctx)
	}
	if err != nil {
		return fmt.Errorf("secretscan: read keys: %w", err)
	}
	keys, err := Parse(data)
	if err != nil {
		return err
	}
	k.mu.Lock()
	k.keys = keys
	k.lastFetch = k.cfg.Now()
	k.mu.Unlock()
	return nil
}

func (k *Keys) fetch(ctx context.Context) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.cfg.URL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.cfg.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET keys: status %d", resp.StatusCode)
	}
	return io.ReadAll(io.LimitReader(resp.Body, maxKeysDocument))
}

// Document is GitHub's published key list.
type Document struct {
	PublicKeys []PublicKey `json:"public_keys"`
}

// PublicKey is one entry of it. Every key listed is accepted, current or
// not: GitHub may still sign with a key it is rotating away from.
type PublicKey struct {
	KeyIdentifier string `json:"key_identifier"`
	Key           string `json:"key"`
	IsCurrent     bool   `json:"is_current"`
}

// Parse reads a key document: ECDSA P-256 keys in PEM (PKIX) only.
func Parse(data []byte) (map[string]*ecdsa.PublicKey, error) {
	var doc Document
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("secretscan: key document: %w", err)
	}
	out := map[string]*ecdsa.PublicKey{}
	for i, pk := range doc.PublicKeys {
		if pk.KeyIdentifier == "" {
			return nil, fmt.Errorf("secretscan: key %d has no key_identifier", i)
		}
		block, _ := pem.Decode([]byte(pk.Key))
		if block == nil {
			return nil, fmt.Errorf("secretscan: key %s is not PEM", pk.KeyIdentifier)
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("secretscan: key %s: %w", pk.KeyIdentifier, err)
		}
		ec, ok := pub.(*ecdsa.PublicKey)
		if !ok || ec.Curve != elliptic.P256() {
			return nil, fmt.Errorf("secretscan: key %s is not an ECDSA P-256 key", pk.KeyIdentifier)
		}
		out[pk.KeyIdentifier] = ec
	}
	if len(out) == 0 {
		return nil, errors.New("secretscan: the key document lists no keys")
	}
	return out, nil
}

// Signer signs reports as GitHub does (tests and local tools).
type Signer struct {
	ID  string
	Key *ecdsa.PrivateKey
}

// Sign returns the base64 signature of body.
func (s Signer) Sign(body []byte) (string, error) {
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.Key, sum[:])
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sig), nil
}

// DocumentOf publishes the signers' public keys as GitHub does.
func DocumentOf(signers ...Signer) ([]byte, error) {
	var doc Document
	for i, s := range signers {
		der, err := x509.MarshalPKIXPublicKey(&s.Key.PublicKey)
		if err != nil {
			return nil, err
		}
		doc.PublicKeys = append(doc.PublicKeys, PublicKey{
			KeyIdentifier: s.ID,
			Key:           string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})),
			IsCurrent:     i == 0,
		})
	}
	return json.Marshal(doc)
}
