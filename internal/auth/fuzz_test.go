package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
)

// The fuzz store knows a fixed set of keys. Their tokens are built here, with
// the checksum the spec describes (base62 CRC32 of the first 40 characters),
// so the seed corpus can name them.
const fzAlphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

func fzToken(prefix, random string) string {
	body := prefix + random
	v := crc32.ChecksumIEEE([]byte(body))
	sum := make([]byte, 6)
	for i := 5; i >= 0; i-- {
		sum[i] = fzAlphabet[v%62]
		v /= 62
	}
	return body + string(sum)
}

type fzEntry struct {
	token string
	key   apikey.Key
	mode  apikey.Mode
	// ok: the token must authenticate as key.ID.
	ok bool
}

var fzNow = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func fzEntries() []fzEntry {
	past, future := fzNow.Add(-time.Hour), fzNow.Add(time.Hour)
	r := func(c string) string { return strings.Repeat(c, 32) }
	active := func(id, typ string) apikey.Key {
		return apikey.Key{ID: id, AccountID: "acct_fz", Type: typ, Status: apikey.StatusActive,
			Permissions: map[string][]string{"account:api:key": {"create"}}}
	}
	var out []fzEntry
	add := func(tok string, mode apikey.Mode, k apikey.Key, ok bool) {
		out = append(out, fzEntry{token: tok, key: k, mode: mode, ok: ok})
	}
	add(fzToken("sk_live_", r("A")), apikey.Live, active("key_livesecret", apikey.TypeSecret), true)
	add(fzToken("sk_test_", r("B")), apikey.Sandbox, active("key_testsecret", apikey.TypeSecret), true)
	add(fzToken("pk_live_", r("C")), apikey.Live, active("key_livepub", apikey.TypePublishable), true)
	add(fzToken("pk_test_", r("D")), apikey.Sandbox, active("key_testpub", apikey.TypePublishable), true)
	inactive := active("key_inactive", apikey.TypeSecret)
	inactive.Status = apikey.StatusInactive
	add(fzToken("sk_test_", r("E")), apikey.Sandbox, inactive, false)
	expired := active("key_expired", apikey.TypeSecret)
	expired.ExpiresAt = &past
	add(fzToken("sk_test_", r("F")), apikey.Sandbox, expired, false)
	deleted := active("key_deleted", apikey.TypeSecret)
	deleted.Deleted = true
	add(fzToken("sk_test_", r("G")), apikey.Sandbox, deleted, false)
	// An sk_ token whose stored key is publishable: the kinds must agree.
	add(fzToken("sk_test_", r("H")), apikey.Sandbox, active("key_mismatch", apikey.TypePublishable), false)
	// The same random part in the other mode is not this key.
	add(fzToken("sk_live_", r("I")), apikey.Sandbox, active("key_wrongmode", apikey.TypeSecret), false)
	// Previous secrets: one inside its grace period, one past it.
	grace := active("key_grace", apikey.TypeSecret)
	grace.PrevSecretExpiresAt = &future
	add(fzToken("sk_test_", r("J")), apikey.Sandbox, grace, true)
	stale := active("key_stale", apikey.TypeSecret)
	stale.PrevSecretExpiresAt = &past
	add(fzToken("sk_test_", r("K")), apikey.Sandbox, stale, false)
	return out
}

// fzFailToken makes the fake store fail, as an unreachable database would.
var fzFailToken = fzToken("sk_test_", strings.Repeat("Z", 32))

// fakeStore answers KeyBySecretHash from a map and every other call with an
// error; a nil *fakeStore or a mode it lacks still answers (not found).
type fakeStore struct{ repos map[apikey.Mode]*fakeRepo }

func (s *fakeStore) Repo(m apikey.Mode) store.Repository {
	if s == nil || s.repos[m] == nil {
		return (*fakeRepo)(nil)
	}
	return s.repos[m]
}
func (s *fakeStore) Ping(context.Context) error { return nil }
func (s *fakeStore) Close() error               { return nil }

type fakeRepo struct {
	byHash   map[string]apikey.Key
	failHash string
}

var errFake = errors.New("fake store: not supported")

func (r *fakeRepo) KeyBySecretHash(_ context.Context, hash []byte) (*apikey.Key, error) {
	if r == nil {
		return nil, store.ErrNotFound
	}
	if string(hash) == r.failHash {
		return nil, errors.New("fake store: unavailable")
	}
	k, ok := r.byHash[string(hash)]
	if !ok {
		return nil, store.ErrNotFound
	}
	k.Permissions = map[string][]string{"account:api:key": {"create"}}
	return &k, nil // a copy: the caller cannot change the store
}
func (r *fakeRepo) AccountExists(context.Context, string) (bool, error) { return false, errFake }
func (r *fakeRepo) GetKey(context.Context, string) (*apikey.Key, error) {
	return nil, store.ErrNotFound
}
func (r *fakeRepo) ListManagedKeys(context.Context, string) ([]*apikey.Key, error) {
	return nil, errFake
}
func (r *fakeRepo) InTx(context.Context, func(store.Tx) error) error { return errFake }
func (r *fakeRepo) ListKeys(context.Context, store.KeyFilter) ([]*apikey.Key, error) {
	return nil, errFake
}
func (r *fakeRepo) ListAuditEvents(context.Context, store.AuditFilter) ([]audit.Event, error) {
	return nil, errFake
}
func (r *fakeRepo) AuditAccounts(context.Context) ([]store.AuditHead, error) { return nil, errFake }
func (r *fakeRepo) AuditChain(context.Context, string) ([]audit.Event, error) {
	return nil, errFake
}
func (r *fakeRepo) RecordUsage(context.Context, []store.Usage) error { return errFake }
func (r *fakeRepo) SpendCredits(context.Context, string, int64, time.Time) (int64, bool, error) {
	return 0, false, errFake
}

func hashOf(s string) string { h := sha256.Sum256([]byte(s)); return string(h[:]) }

// fzStore fills a fake store with the fixture keys.
func fzStore() ([]fzEntry, *fakeStore, map[string]fzEntry) {
	entries := fzEntries()
	fs := &fakeStore{repos: map[apikey.Mode]*fakeRepo{
		apikey.Live:    {byHash: map[string]apikey.Key{}},
		apikey.Sandbox: {byHash: map[string]apikey.Key{}, failHash: hashOf(fzFailToken)},
	}}
	byToken := map[string]fzEntry{}
	for _, e := range entries {
		k := e.key
		switch {
		case k.PrevSecretExpiresAt != nil:
			// The token is the previous secret; the current one is unknown here.
			k.SecretHash, k.PrevSecretHash = []byte(hashOf("current of "+k.ID)), []byte(hashOf(e.token))
		case k.ID == "key_wrongmode":
			k.SecretHash = []byte(hashOf(strings.Replace(e.token, "_live_", "_test_", 1)))
		default:
			k.SecretHash = []byte(hashOf(e.token))
		}
		fs.repos[e.mode].byHash[hashOf(e.token)] = k
		byToken[e.token] = e
	}
	return entries, fs, byToken
}

// TestFuzzStoreFixture makes sure FuzzAuthenticate is not vacuous: each
// fixture token authenticates exactly when it should, and the failing token
// is a 500.
func TestFuzzStoreFixture(t *testing.T) {
	entries, fs, _ := fzStore()
	a := &auth.Authenticator{Store: fs, Now: func() time.Time { return fzNow }}
	for _, e := range entries {
		p, err := a.Authenticate(context.Background(), "Bearer "+e.token, "192.0.2.1")
		if (err == nil) != e.ok || (err == nil && p.KeyID != e.key.ID) {
			t.Errorf("%s: principal %+v, error %v; want ok=%v", e.key.ID, p, err, e.ok)
		}
	}
	var ae *apierr.Error
	if _, err := a.Authenticate(context.Background(), "Bearer "+fzFailToken, ""); !errors.As(err, &ae) || ae.Status != 500 {
		t.Errorf("store failure: %v, want a 500", err)
	}
}

// FuzzAuthenticate feeds arbitrary Authorization values to Authenticate. It
// must never panic, never authenticate a token the store does not hold as an
// active, unexpired key of the token's kind (or a previous secret inside its
// grace period), and fail only with 401, or 500 when the store fails.
func FuzzAuthenticate(f *testing.F) {
	entries, fs, byToken := fzStore()

	// JWTs: signed by a key made for this process, verified from its PEM.
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, _ := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	pemFile := filepath.Join(f.TempDir(), "jwt.pem")
	if err := os.WriteFile(pemFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o600); err != nil {
		f.Fatal(err)
	}
	verifier, err := auth.NewJWTVerifier(context.Background(), auth.JWTConfig{PublicKeyFile: pemFile, Issuer: "fz-iss", Audience: "fz-aud"})
	if err != nil {
		f.Fatal(err)
	}
	sign := func(mode string, exp time.Time) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodES256, auth.Claims{
			RegisteredClaims: jwt.RegisteredClaims{Subject: "fz-sub", Issuer: "fz-iss", Audience: jwt.ClaimStrings{"fz-aud"}, ExpiresAt: jwt.NewNumericDate(exp)},
			Accounts:         []string{"acct_fz"}, Permissions: []string{"account:api:key:create"}, Mode: mode,
		}).SignedString(priv)
		if err != nil {
			f.Fatal(err)
		}
		return s
	}
	validJWT := sign("test", time.Now().Add(time.Hour))
	// Tokens signed by the right key that rule 10 ("JWTs are strict")
	// refuses: hand-built header and payload JSON.
	signRaw := func(header, payload string) string {
		input := b64(header) + "." + b64(payload)
		sig, err := jwt.SigningMethodES256.Sign(input, priv)
		if err != nil {
			f.Fatal(err)
		}
		return input + "." + base64.RawURLEncoding.EncodeToString(sig)
	}
	now := time.Now().Unix()
	claims := func(iat, exp string, extra string) string {
		return `{"iss":"fz-iss","aud":"fz-aud","sub":"fz-sub","accounts":["acct_fz"],"permissions":["account:api:key:create"],"mode":"test"` +
			iat + `,"exp":` + exp + extra + `}`
	}
	iatNow, expHour := fmt.Sprintf(`,"iat":%d`, now), fmt.Sprint(now+3600)
	strictJWTs := []string{
		signRaw(`{"alg":"ES256","crit":["exp"]}`, claims(iatNow, expHour, "")),
		signRaw(`{"alg":"ES256","alg":"ES256"}`, claims(iatNow, expHour, "")),
		signRaw(`{"alg":"ES256"}`, claims(fmt.Sprintf(`,"iat":%d`, now+3600), fmt.Sprint(now+7200), "")),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, `"`+expHour+`"`, "")),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, expHour+".5", "")),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, "1.8e9", "")),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, expHour, `,"sub":"other"`)),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, expHour, `,"accounts":["acct_other"]`)),
		signRaw(`{"alg":"ES256"}`, claims(iatNow, fmt.Sprint(now+25*3600), "")),
		signRaw(`{"alg":"ES256"}`, claims("", fmt.Sprint(now+25*3600), "")),
	}
	if _, err := verifier.Verify(signRaw(`{"alg":"ES256"}`, claims(iatNow, expHour, ""))); err != nil {
		f.Fatalf("the hand-built control token is refused: %v", err)
	}

	for _, e := range entries {
		f.Add("Bearer " + e.token)
	}
	for _, h := range []string{
		"", " ", "Bearer", "Bearer ", "Bearer  " + entries[0].token, "bearer " + entries[1].token, "BEARER " + entries[2].token,
		"  Bearer " + entries[0].token + "  ", "Bearer\t" + entries[0].token, "Bearer " + entries[0].token + " x",
		"Basic " + entries[0].token, entries[0].token, "Bearer " + fzFailToken, "Bearer " + validJWT,
		"Bearer " + sign("staging", time.Now().Add(time.Hour)), "Bearer " + sign("live", time.Now().Add(-time.Hour)),
		"Bearer " + validJWT[:len(validJWT)-2], "Bearer eyJhbGciOiJub25lIn0.e30.", "Bearer sk_" + strings.Repeat("a", 5000),
		"Bearer " + strings.Replace(entries[0].token, "sk_live_", "sk_test_", 1), "Bearer \x00sk_live_", "Bearer é",
	} {
		f.Add(h)
	}
	for i, tok := range strictJWTs {
		if _, err := verifier.Verify(tok); err == nil {
			f.Fatalf("strict seed %d accepted", i)
		}
		f.Add("Bearer " + tok)
	}

	keyAuth := &auth.Authenticator{Store: fs, Now: func() time.Time { return fzNow }}
	jwtAuth := &auth.Authenticator{Store: fs, JWT: verifier, Now: func() time.Time { return fzNow }}
	var nilStore *fakeStore
	nilAuth := &auth.Authenticator{Store: nilStore, Now: func() time.Time { return fzNow }}

	f.Fuzz(func(t *testing.T, header string) {
		for name, a := range map[string]*auth.Authenticator{"keys only": keyAuth, "with JWT": jwtAuth, "empty store": nilAuth} {
			p, err := a.Authenticate(context.Background(), header, "192.0.2.1")
			if err != nil {
				if p != nil {
					t.Fatalf("%s: %q: both a principal and an error", name, header)
				}
				var fail *auth.Failure
				var ae *apierr.Error
				if !errors.As(err, &fail) || !errors.As(err, &ae) {
					t.Fatalf("%s: %q: error %v is not an auth failure with an API error", name, header, err)
				}
				switch ae.Status {
				case http.StatusUnauthorized:
				case http.StatusInternalServerError:
					if name == "empty store" || !containsField(header, fzFailToken) {
						t.Fatalf("%s: %q: 500 without a store failure", name, header)
					}
				default:
					t.Fatalf("%s: %q: status %d", name, header, ae.Status)
				}
				continue
			}
			if p == nil {
				t.Fatalf("%s: %q: no principal and no error", name, header)
			}
			if p.Kind == keys.KindJWT {
				if a.JWT == nil || p.Subject != "jwt:fz-sub" {
					t.Fatalf("%s: %q: JWT principal %+v", name, header, p)
				}
				continue
			}
			// A key principal: the header must carry a token the store holds
			// as a key that may authenticate, and the principal must be that key.
			var e fzEntry
			var found bool
			for _, field := range strings.Fields(header) {
				if e, found = byToken[field]; found {
					break
				}
			}
			if !found || !e.ok || name == "empty store" {
				t.Fatalf("%s: %q authenticated as %+v: the store holds no such usable key", name, header, p)
			}
			wantKind := keys.KindSecret
			if e.key.Type == apikey.TypePublishable {
				wantKind = keys.KindPublishable
			}
			if p.KeyID != e.key.ID || p.Subject != e.key.ID || p.Mode != e.mode || p.Kind != wantKind ||
				len(p.Accounts) != 1 || p.Accounts[0] != e.key.AccountID {
				t.Fatalf("%s: %q: principal %+v is not key %s (%s)", name, header, p, e.key.ID, e.mode)
			}
		}
	})
}

func containsField(header, tok string) bool {
	for _, f := range strings.Fields(header) {
		if f == tok {
			return true
		}
	}
	return false
}
