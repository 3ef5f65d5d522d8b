package server_test

// A stale cached credential cannot write (issue 23). Without Redis a
// replica's credential cache may keep a key for its whole TTL after another
// replica deleted, disabled, rotated or shortened it: authentication on that
// replica still passes. What stops the key from acting is the re-check each
// write makes inside its own unit of work (policy.Recheck in create,
// policy.Current in lockTarget for regenerate, update and delete, and the
// re-read in apikeys.AuthorizeReplay for a replayed answer). These tests
// hold that line: each fails if that one re-check is made a no-op.

import (
	"fmt"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/store"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// staleTTL outlives every test: nothing leaves replica b's cache by age.
// (The cache's TTL runs on real time, not on the settable service clock, so
// advancing the clocks does not expire entries either.)
const staleTTL = time.Hour

// staleReplicas runs f on two replicas of one store with no Redis between
// them, b with a long credential cache (mb counts its lookups): on SQLite two
// servers share one store object, on PostgreSQL each has its own pool.
func staleReplicas(t *testing.T, f func(t *testing.T, a, b *testenv.Env, mb *metrics.Metrics)) {
	t.Run("sqlite", func(t *testing.T) {
		a := testenv.New(t, testenv.Config{CredentialCacheTTL: staleTTL})
		mb := metrics.New()
		b := testenv.New(t, testenv.Config{Store: a.Store, CredentialCacheTTL: staleTTL, IdempotencyKey: a.IdempotencyKey, Metrics: mb})
		f(t, a, b, mb)
	})
	t.Run("postgres", func(t *testing.T) {
		url := storetest.FreshPostgresDB(t)
		a := testenv.New(t, testenv.Config{Store: openPostgres(t, url), CredentialCacheTTL: staleTTL})
		mb := metrics.New()
		b := testenv.New(t, testenv.Config{Store: openPostgres(t, url), CredentialCacheTTL: staleTTL, IdempotencyKey: a.IdempotencyKey, Metrics: mb})
		f(t, a, b, mb)
	})
}

// rawCall sends method env.URL+path as token (with an Idempotency-Key when
// idem is not ""; a JSON body when body is not nil) and returns the status
// and body.
func rawCall(t *testing.T, env *testenv.Env, method, path, token, idem string, body []byte) (int, []byte) {
	t.Helper()
	status, _, b := rawExchange(t, env, method, path, token, idem, body)
	return status, b
}

// storeState is what the store holds of an account, read behind the
// servers' backs: every key (deleted ones too) without its last use (usage
// is flushed on its own schedule), and the audit chain.
type storeState struct {
	Keys   []apikey.Key
	Events int
	Head   string
}

func stateOf(t *testing.T, st store.Store, account string) storeState {
	t.Helper()
	repo := st.Repo(apikey.Sandbox)
	var s storeState
	for _, deleted := range []bool{false, true} {
		ks, err := repo.ListKeys(ctx, store.KeyFilter{AccountID: account, Deleted: deleted, Now: time.Now(), Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range ks {
			c := *k
			c.LastUsedAt, c.LastUsedIP = nil, nil
			s.Keys = append(s.Keys, c)
		}
	}
	events, err := repo.AuditChain(ctx, account)
	if err != nil {
		t.Fatal(err)
	}
	s.Events = len(events)
	if len(events) > 0 {
		s.Head = events[len(events)-1].Hash
	}
	return s
}

// staleCase is one account where a key (the actor) is about to go stale on
// replica b.
type staleCase struct {
	account string
	mk      testenv.Managed
	admin   *client.APIKey // every permission, unaffected by the change
	actorID string         // the key whose secret goes stale
	actor   string         // its secret as b's cache holds it
	victim  *client.APIKey // a custom key the writes aim at
}

// staleWay is how the actor stops working on replica a, and the refusal a
// fresh request of it gets once re-read.
type staleWay struct {
	name    string
	managed bool // the actor is the managed secret key (only it rotates)
	code    client.ErrorCode
	change  func(t *testing.T, a, b *testenv.Env, c *staleCase)
}

var staleWays = []staleWay{
	{name: "deleted", code: client.CodeInvalidCredentials, change: func(t *testing.T, a, _ *testenv.Env, c *staleCase) {
		if _, err := deleteKey(t, a.Client(c.admin.Key), c.actorID); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "disabled", code: client.CodeInvalidCredentials, change: func(t *testing.T, a, _ *testenv.Env, c *staleCase) {
		if _, err := updateKey(t, a.Client(c.admin.Key), c.actorID, client.UpdateAPIKeyRequest{Status: ptr(client.UpdateStatusInactive)}); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "rotated away", managed: true, code: client.CodeInvalidCredentials, change: func(t *testing.T, a, _ *testenv.Env, c *staleCase) {
		// No grace: the old secret stops with the rotation's commit.
		if _, err := a.Client(c.actor).RegenerateAPIKey(ctx, c.actorID); err != nil {
			t.Fatal(err)
		}
	}},
	{name: "expired", code: client.CodeExpiredCredentials, change: func(t *testing.T, a, b *testenv.Env, c *staleCase) {
		// b cached the key without an expiry; a gives it one, then time
		// passes it on both replicas.
		exp := a.Clock.Now().Add(time.Hour)
		if _, err := updateKey(t, a.Client(c.admin.Key), c.actorID, client.UpdateAPIKeyRequest{ExpiresAt: &exp}); err != nil {
			t.Fatal(err)
		}
		a.Clock.Advance(2 * time.Hour)
		b.Clock.Advance(2 * time.Hour)
	}},
}

// staleWrite is one write the stale actor attempts on b. before runs while
// the actor still works (on b, so that a replay has something to replay);
// attempt is the write itself.
type staleWrite struct {
	name    string
	before  func(t *testing.T, b *testenv.Env, c *staleCase)
	attempt func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte)
}

const staleCreateBody = `{"name":"made by a stale key","permissions":{"payment":["read"]}}`

var staleWrites = []staleWrite{
	{name: "create", attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodPost, "/api-keys/?account_id="+c.account, c.actor, "", []byte(staleCreateBody))
	}},
	{name: "regenerate", attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodPost, "/api-keys/"+c.mk.PublishableID+"/regenerate", c.actor, "", nil)
	}},
	{name: "update", attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodPatch, "/api-keys/"+c.victim.ID, c.actor, "", []byte(`{"name":"renamed by a stale key","status":"INACTIVE"}`))
	}},
	{name: "delete", attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodDelete, "/api-keys/"+c.victim.ID, c.actor, "", nil)
	}},
	{name: "replay create", before: func(t *testing.T, b *testenv.Env, c *staleCase) {
		if st, body := rawCall(t, b, http.MethodPost, "/api-keys/?account_id="+c.account, c.actor, "stale-create", []byte(staleCreateBody)); st != http.StatusCreated {
			t.Fatalf("the create to replay: %d %s", st, body)
		}
	}, attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodPost, "/api-keys/?account_id="+c.account, c.actor, "stale-create", []byte(staleCreateBody))
	}},
	{name: "replay regenerate", before: func(t *testing.T, b *testenv.Env, c *staleCase) {
		if st, body := rawCall(t, b, http.MethodPost, "/api-keys/"+c.mk.PublishableID+"/regenerate", c.actor, "stale-rotate", nil); st != http.StatusOK {
			t.Fatalf("the regenerate to replay: %d %s", st, body)
		}
	}, attempt: func(t *testing.T, b *testenv.Env, c *staleCase) (int, []byte) {
		return rawCall(t, b, http.MethodPost, "/api-keys/"+c.mk.PublishableID+"/regenerate", c.actor, "stale-rotate", nil)
	}},
}

// TestStaleCachedCredentialCannotWrite: replica b still authenticates a key
// replica a deleted, disabled, rotated away or made to expire (its cache
// holds the key as it was, and no Redis tells it otherwise); every write of
// that key on b, and every replay of what it did, is refused 401 as a fresh
// request of it would be (40101, 40102 once expired), with the store and
// the audit chain unchanged.
func TestStaleCachedCredentialCannotWrite(t *testing.T) {
	staleReplicas(t, func(t *testing.T, a, b *testenv.Env, mb *metrics.Metrics) {
		n := 0
		for _, way := range staleWays {
			for _, w := range staleWrites {
				n++
				t.Run(way.name+"/"+w.name, func(t *testing.T) {
					c := &staleCase{account: fmt.Sprintf("acct_stale_%02d", n)}
					c.mk = a.Bootstrap(c.account)[apikey.Sandbox]
					owner := a.Client(c.mk.Secret)
					var err error
					if c.admin, err = owner.CreateAPIKey(ctx, c.account, newKeyReq("admin", everyPermission)); err != nil {
						t.Fatal(err)
					}
					if c.victim, err = owner.CreateAPIKey(ctx, c.account, newKeyReq("victim", client.Permissions{"payment": {"read"}})); err != nil {
						t.Fatal(err)
					}
					c.actorID, c.actor = c.mk.SecretID, c.mk.Secret
					if !way.managed {
						k, err := owner.CreateAPIKey(ctx, c.account, newKeyReq("actor", everyPermission))
						if err != nil {
							t.Fatal(err)
						}
						c.actorID, c.actor = k.ID, k.Key
					}
					if w.before != nil {
						w.before(t, b, c)
					}
					hits := cacheHits(t, mb)
					warm(t, b, c.actor)
					if cacheHits(t, mb) <= hits {
						t.Fatal("replica b's cache served no hit: this test would prove nothing")
					}

					way.change(t, a, b, c)
					// The premise: b still takes the stale secret (its
					// cached snapshot), so a refusal below can only come
					// from the write's own re-check.
					if s, code := probe(t, b, c.actor); s != http.StatusNotFound {
						t.Fatalf("replica b no longer authenticates the stale secret (%d %d): the cache did not hold it, this test would prove nothing", s, code)
					}
					if s, code := probe(t, a, c.actor); s != http.StatusUnauthorized || code != way.code {
						t.Fatalf("replica a: %d %d; want 401 %d", s, code, way.code)
					}

					before := stateOf(t, a.Store, c.account)
					status, body := w.attempt(t, b, c)
					wantRefused(t, "a stale "+way.name+" key's "+w.name+" on replica b", status, body, http.StatusUnauthorized, way.code, c.actor)
					if after := stateOf(t, a.Store, c.account); !reflect.DeepEqual(before, after) {
						t.Fatalf("the refused %s changed the store:\nbefore %+v\nafter  %+v", w.name, before, after)
					}
				})
			}
		}
	})
}
