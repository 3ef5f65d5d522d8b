package server_test

// One test per class of hole the credential-safety issue found, each on
// SQLite and PostgreSQL. The model-based search for violations is
// TestCredentialSafetyModel; these pin the reported examples down.

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

var everyPermission = client.Permissions{
	"account": {"read", "update"}, "account:api:key": {"create", "read", "update", "delete", "verify"},
	"customer": {"create", "read", "update", "delete"}, "payment": {"create", "read", "update", "cancel"},
	"refund": {"create", "read"}, "webhook": {"create", "read", "update", "delete"}, "account:audit": {"read"},
}

func mustCreate(t *testing.T, c *client.Client, req client.CreateAPIKeyRequest) *client.APIKey {
	t.Helper()
	k, err := c.CreateAPIKey(ctx, acct, req)
	if err != nil {
		t.Fatalf("create %q: %v", req.Name, err)
	}
	return k
}

// Power never grows: update (and read, so that the refusal may list what
// the caller lacks) cannot rotate the managed secret, by key or JWT.
func TestRegenerateCannotEscalate(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		updater := mustCreate(t, env.Client(m.Secret), newKeyReq("updater", client.Permissions{"account:api:key": {"update", "read"}}))
		jwt := env.JWT.Sign(t, env.JWT.Claims("mallory", []string{acct}, []string{"account:api:key:update", "account:api:key:read"}, "test"))
		for who, tok := range map[string]string{"key": updater.Key, "jwt": jwt} {
			_, err := env.Client(tok).RegenerateAPIKey(ctx, m.SecretID)
			ae := requireAPIError(t, err, 403, client.CodePrivilegeEscalation)
			if missing := toStrings(ae.Details["missing"]); len(missing) == 0 || !strings.Contains(strings.Join(missing, ","), "payment:create") {
				t.Fatalf("%s: details.missing = %v", who, ae.Details["missing"])
			}
		}
		// Nothing changed: the managed secret still works.
		if !works(t, env, m.Secret) {
			t.Fatal("the managed secret stopped working after refused regenerates")
		}
		// A key holding everything may rotate it (and so may a JWT holding everything).
		all := mustCreate(t, env.Client(m.Secret), newKeyReq("all", everyPermission))
		if _, err := env.Client(all.Key).RegenerateAPIKey(ctx, m.SecretID); err != nil {
			t.Fatalf("a key holding every permission: %v", err)
		}
	})
}

// A replaced secret manages nothing, and the owner's new secret is unaffected.
func TestReplacedSecretManagesNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		rotated, err := env.Client(m.Secret).RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(7*24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		old := env.Client(m.Secret)
		_, err = old.RegenerateAPIKey(ctx, m.SecretID, client.WithGracePeriod(7*24*time.Hour))
		wantAPIError(t, err, 403, client.CodeReplacedSecret)
		_, err = old.CreateAPIKey(ctx, acct, newKeyReq("permanent", client.Permissions{}))
		wantAPIError(t, err, 403, client.CodeReplacedSecret)
		// It still authenticates until its grace ends, and the new secret works.
		if !works(t, env, m.Secret) || !works(t, env, rotated.Key) {
			t.Fatal("both secrets must authenticate during the grace period")
		}
		if _, err := env.Client(rotated.Key).CreateAPIKey(ctx, acct, newKeyReq("by the owner", client.Permissions{})); err != nil {
			t.Fatalf("the owner's current secret: %v", err)
		}
	})
}

// Life never grows: an expiring key creates only keys that die no later,
// and cannot rotate a key that outlives it.
func TestLifeNeverGrows(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		hour := env.Clock.Now().Add(time.Hour).UTC().Truncate(time.Second)
		req := newKeyReq("hour", everyPermission)
		req.ExpiresAt = &hour
		short := mustCreate(t, env.Client(m.Secret), req)
		c := env.Client(short.Key)

		_, err := c.CreateAPIKey(ctx, acct, newKeyReq("forever", client.Permissions{}))
		ae := requireAPIError(t, err, 422, client.CodeLifetimeExceedsCaller)
		if ae.Details["max_expires_at"] != hour.Format(time.RFC3339) {
			t.Fatalf("max_expires_at = %v, want %s", ae.Details["max_expires_at"], hour.Format(time.RFC3339))
		}
		later := hour.Add(time.Second)
		tooLong := newKeyReq("later", client.Permissions{})
		tooLong.ExpiresAt = &later
		_, err = c.CreateAPIKey(ctx, acct, tooLong)
		wantAPIError(t, err, 422, client.CodeLifetimeExceedsCaller)
		within := newKeyReq("within", client.Permissions{})
		within.ExpiresAt = &hour
		if _, err := c.CreateAPIKey(ctx, acct, within); err != nil {
			t.Fatalf("a child expiring with its parent: %v", err)
		}
		_, err = c.RegenerateAPIKey(ctx, m.SecretID)
		wantAPIError(t, err, 403, client.CodeLifetimeEscalation)
		// A JWT's exp does not bound what it creates (documented).
		jwt := env.JWT.Sign(t, env.JWT.Claims("ann", []string{acct}, []string{"account:api:key:create"}, "test"))
		if _, err := env.Client(jwt).CreateAPIKey(ctx, acct, newKeyReq("by a person", client.Permissions{})); err != nil {
			t.Fatalf("JWT create without expiry: %v", err)
		}
	})
}

// Check and act atomically: a burst of regenerates with one secret rotating
// its own key. The first to commit kills the secret; every later one must
// see that inside its transaction and refuse (401), never answer 200 with a
// secret that is already dead.
func TestRegenerateBurstRechecksTheCaller(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		const n = 20
		var (
			wg      sync.WaitGroup
			mu      sync.Mutex
			secrets []string
			refused int
		)
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k, err := c.RegenerateAPIKey(ctx, m.SecretID)
				mu.Lock()
				defer mu.Unlock()
				var ae *client.Error
				switch {
				case err == nil:
					secrets = append(secrets, k.Key)
				case errors.As(err, &ae) && ae.StatusCode == 401:
					refused++
				default:
					t.Errorf("unexpected answer: %v", err)
				}
			}()
		}
		wg.Wait()
		if len(secrets) != 1 || refused != n-1 {
			t.Fatalf("%d rotations and %d refusals from one secret; want exactly 1 and %d", len(secrets), refused, n-1)
		}
		if !works(t, env, secrets[0]) || works(t, env, m.Secret) {
			t.Fatal("the one acknowledged secret must work, and the old one must not")
		}
	})
}

// What is accepted can be stored and rendered; a refusal consumes nothing.
func TestExpiryBeyondYear9999(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		for _, raw := range []string{"9999-12-31T23:30:00-01:00", "9999-12-31T23:59:59.5Z"} {
			exp, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil {
				t.Fatal(err)
			}
			req := newKeyReq("far future", client.Permissions{})
			req.ExpiresAt = &exp
			_, err = c.CreateAPIKey(ctx, acct, req)
			wantAPIError(t, err, 422, client.CodeInvalidExpiry)
		}
		last := apikeys.MaxExpiry
		req := newKeyReq("far future", client.Permissions{}) // the name was not consumed
		req.ExpiresAt = &last
		k := mustCreate(t, c, req)
		if !k.ExpiresAt.Equal(last) {
			t.Fatalf("expires_at = %v", k.ExpiresAt)
		}
	})
}

// Names are for people, and an expired key gives its name up.
func TestNamesForPeople(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox]
		c := env.Client(m.Secret)
		for _, name := range []string{
			"Managed secret key\u200b", "Managed\u00a0secret key", "\u202eyek terces deganaM", "bell\u0007",
			"line\u2028break", "private\ue000", "nonchar\ufffe", " padded", "padded ", "soft\u00adhyphen",
		} {
			_, err := createUnchecked(t, c, acct, newKeyReq(name, client.Permissions{}))
			ae := requireAPIError(t, err, 400, client.CodeValidationFailed)
			if !strings.Contains(fmt.Sprint(ae.Details["errors"]), "/name") {
				t.Fatalf("%q: details %v do not name the field", name, ae.Details)
			}
		}
		// NFC: the decomposed and composed forms are one name.
		k := mustCreate(t, c, newKeyReq("Cafe\u0301", client.Permissions{}))
		if k.Name != "Café" {
			t.Fatalf("stored name %q, want NFC", k.Name)
		}
		_, err := c.CreateAPIKey(ctx, acct, newKeyReq("Café", client.Permissions{}))
		wantAPIError(t, err, 409, client.CodeDuplicateName)
		// An expired key's name is free again.
		soon := env.Clock.Now().Add(time.Minute)
		req := newKeyReq("rotating name", client.Permissions{})
		req.ExpiresAt = &soon
		mustCreate(t, c, req)
		_, err = c.CreateAPIKey(ctx, acct, newKeyReq("rotating name", client.Permissions{}))
		wantAPIError(t, err, 409, client.CodeDuplicateName)
		env.Clock.Advance(2 * time.Minute)
		mustCreate(t, c, newKeyReq("rotating name", client.Permissions{}))
	})
}

// An account holds at most the configured number of active keys.
func TestActiveKeyCap(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		cfg.MaxActiveKeys = 5
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[apikey.Sandbox] // two managed keys count
		c := env.Client(m.Secret)
		soon := env.Clock.Now().Add(time.Minute)
		for i := range 3 {
			req := newKeyReq(fmt.Sprintf("k%d", i), client.Permissions{})
			if i == 0 {
				req.ExpiresAt = &soon
			}
			mustCreate(t, c, req)
		}
		_, err := c.CreateAPIKey(ctx, acct, newKeyReq("one too many", client.Permissions{}))
		ae := requireAPIError(t, err, 409, client.CodeKeyLimitReached)
		if fmt.Sprint(ae.Details["limit"]) != "5" {
			t.Fatalf("details.limit = %v", ae.Details["limit"])
		}
		// The live mode has its own count, and an expired key frees its place.
		if _, err := env.Client(env.Bootstrap("acct_other")[apikey.Sandbox].Secret).CreateAPIKey(ctx, "acct_other", newKeyReq("elsewhere", client.Permissions{})); err != nil {
			t.Fatalf("another account: %v", err)
		}
		env.Clock.Advance(2 * time.Minute)
		mustCreate(t, c, newKeyReq("one too many", client.Permissions{}))
	})
}

// Provisioning is all or nothing across modes, and every key says who made it.
func TestBootstrapAllOrNothingAndCreatedBy(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		svc := env.Server.Service
		if _, err := svc.Bootstrap(ctx, "acct_half", []apikey.Mode{apikey.Sandbox}); err != nil {
			t.Fatal(err)
		}
		_, err := svc.Bootstrap(ctx, "acct_half", apikey.Modes)
		if !errors.Is(err, apikeys.ErrAccountExists) || !strings.Contains(err.Error(), "test") {
			t.Fatalf("bootstrap over a half-made account: %v", err)
		}
		if ok, err := env.Store.Repo(apikey.Live).AccountExists(ctx, "acct_half"); err != nil || ok {
			t.Fatalf("the live mode was provisioned anyway (exists=%v, err=%v)", ok, err)
		}
		// The missing mode can still be provisioned on its own.
		if _, err := svc.Bootstrap(ctx, "acct_half", []apikey.Mode{apikey.Live}); err != nil {
			t.Fatalf("provision the missing mode: %v", err)
		}

		m := env.Bootstrap(acct)[apikey.Sandbox]
		byKey := mustCreate(t, env.Client(m.Secret), newKeyReq("by key", client.Permissions{}))
		jwt := env.JWT.Sign(t, env.JWT.Claims("ann@example.com", []string{acct}, []string{"account:api:key:create"}, "test"))
		byJWT := mustCreate(t, env.Client(jwt), newKeyReq("by jwt", client.Permissions{}))
		rotated, err := env.Client(m.Secret).RegenerateAPIKey(ctx, m.SecretID)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			k        *client.APIKey
			kind, id string
		}{{byKey, "key", m.SecretID}, {byJWT, "jwt", "ann@example.com"}, {rotated, "platform", "bootstrap"}} {
			cb := c.k.CreatedBy
			if string(cb.Kind) != c.kind || cb.ID != c.id || (c.kind != "platform") != strings.HasPrefix(cb.RequestID, "req_") {
				t.Fatalf("%s: created_by = %+v", c.k.Name, cb)
			}
		}
	})
}
