package server_test

// The idempotency middleware claims a record only in an account the caller
// may act on (server/idempotency.go: `if !p.CanActOn(account)`). Were it
// to claim (or look up) a record in another account, that account's
// records would answer a stranger: 42207 for an Idempotency-Key its owner
// used, where a fresh request gets 404 or 403, telling the stranger that
// the key id exists and which Idempotency-Keys were used on it (issue 23).

import (
	"bytes"
	"net/http"
	"regexp"
	"testing"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// requestIDField is the one part of an answer that differs between two
// identical requests.
var requestIDField = regexp.MustCompile(`"request_id":"[^"]*"`)

// sameAnswer fails unless two answers are the same status and the same
// bytes apart from the request id.
func sameAnswer(t *testing.T, what string, status int, body []byte, wantStatus int, want []byte) {
	t.Helper()
	norm := func(b []byte) []byte {
		return requestIDField.ReplaceAll(bytes.TrimSpace(b), []byte(`"request_id":""`))
	}
	if status != wantStatus || !bytes.Equal(norm(body), norm(want)) {
		t.Errorf("%s: %d %s\nwant the answer without an Idempotency-Key: %d %s", what, status, body, wantStatus, want)
	}
}

// TestIdempotencyKeyInAnotherAccountTellsNothing: another account's
// credential (its managed secret key, or a JWT for that account only)
// regenerating a key of acct, or creating a key with account_id=acct, gets
// exactly the answer it gets without an Idempotency-Key (404, 403), whether
// the Idempotency-Key it sends is one acct's owner used for that very
// request or one never used; an existing key id of acct answers as an id
// that does not exist. The owner's records are untouched: its used keys
// still replay, the stranger's unused ones are still free.
func TestIdempotencyKeyInAnotherAccountTellsNothing(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		owner := env.Bootstrap(acct)[apikey.Sandbox]
		const other = "acct_stranger"
		stranger := env.Bootstrap(other)[apikey.Sandbox]
		jwt := env.JWT.Sign(t, env.JWT.Claims("stranger", []string{other}, permissionList(everyPermission), "test"))

		regen := "/api-keys/" + owner.PublishableID + "/regenerate"
		create := "/api-keys/?account_id=" + acct
		body := []byte(`{"name":"by idempotency","permissions":{"payment":["read"]}}`)
		// The owner's requests, each under an Idempotency-Key.
		st, _, rotated := idemPost(t, env, owner.Secret, regen, "used-regen", nil)
		if st != http.StatusOK {
			t.Fatalf("the owner's regenerate: %d %s", st, rotated)
		}
		st, _, created := idemPost(t, env, owner.Secret, create, "used-create", body)
		if st != http.StatusCreated {
			t.Fatalf("the owner's create: %d %s", st, created)
		}

		for who, token := range map[string]string{"another account's managed secret": stranger.Secret, "a JWT for another account": jwt} {
			t.Run(who, func(t *testing.T) {
				// The answers without an Idempotency-Key: what a fresh
				// request of the stranger gets.
				regenStatus, regenPlain := rawCall(t, env, http.MethodPost, regen, token, "", nil)
				if regenStatus != http.StatusNotFound {
					t.Fatalf("a stranger's regenerate: %d %s; want 404", regenStatus, regenPlain)
				}
				missingPath := "/api-keys/key_doesnotexist00000000/regenerate"
				st, missing := rawCall(t, env, http.MethodPost, missingPath, token, "", nil)
				sameAnswer(t, "a key id that does not exist", st, missing, regenStatus, regenPlain)
				createStatus, createPlain := rawCall(t, env, http.MethodPost, create, token, "", body)
				if createStatus != http.StatusForbidden {
					t.Fatalf("a stranger's create: %d %s; want 403", createStatus, createPlain)
				}

				for _, idem := range []string{"used-regen", "used-create", "never-used"} {
					st, b := rawCall(t, env, http.MethodPost, regen, token, idem, nil)
					sameAnswer(t, "regenerate under "+idem, st, b, regenStatus, regenPlain)
					st, b = rawCall(t, env, http.MethodPost, missingPath, token, idem, nil)
					sameAnswer(t, "regenerate of a key id that does not exist under "+idem, st, b, regenStatus, regenPlain)
					st, b = rawCall(t, env, http.MethodPost, create, token, idem, body)
					sameAnswer(t, "create under "+idem, st, b, createStatus, createPlain)
				}
			})
		}

		// The owner's records: its answers still replay, and the keys the
		// strangers sent are no record of acct's.
		st, h, b := idemPost(t, env, owner.Secret, regen, "used-regen", nil)
		wantReplay(t, "the owner's regenerate", st, h, b, http.StatusOK, rotated)
		st, h, b = idemPost(t, env, owner.Secret, create, "used-create", body)
		wantReplay(t, "the owner's create", st, h, b, http.StatusCreated, created)
		st, h, b = idemPost(t, env, owner.Secret, create, "never-used", []byte(`{"name":"after the strangers","permissions":{"payment":["read"]}}`))
		if st != http.StatusCreated || h.Get("Idempotent-Replayed") != "" {
			t.Fatalf("the owner's create under a key only strangers sent: %d replayed=%q %s", st, h.Get("Idempotent-Replayed"), b)
		}
	})
}
