package server_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/client/oapi"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// GET /api-keys/: a subtest per documented status, and paging under churn.
func TestListAPIKeys(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		day := time.Now().Add(24 * time.Hour)
		var secrets []string
		for i := range 7 {
			var exp *time.Time
			if i%3 == 0 {
				exp = &day
			}
			secrets = append(secrets, customKey(t, env, m, fmt.Sprintf("list %d", i), client.Permissions{"payment": {"read"}}, exp).Key)
		}

		t.Run("200 pages of 3 visit every key once, oldest first, no secrets", func(t *testing.T) {
			res, err := admin.Raw().ListAPIKeysWithResponse(ctx, &oapi.ListAPIKeysParams{AccountID: acct, Limit: ptr(3)})
			if err != nil || res.StatusCode() != 200 {
				t.Fatalf("%v %s", err, res.Body)
			}
			for _, s := range secrets {
				if strings.Contains(string(res.Body), s) {
					t.Fatal("a list returned a secret")
				}
			}
			all := listAll(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Limit: ptr(3)})
			if len(all) != 9 { // 2 managed + 7 custom
				t.Fatalf("%d keys listed, want 9", len(all))
			}
			seen := map[string]bool{}
			for i, k := range all {
				if seen[k.ID] || (i > 0 && k.CreatedAt.Before(all[i-1].CreatedAt)) {
					t.Fatalf("key %s repeated or out of order", k.ID)
				}
				seen[k.ID] = true
			}
		})
		t.Run("200 filters", func(t *testing.T) {
			for _, c := range []struct {
				p    oapi.ListAPIKeysParams
				want int
			}{
				{oapi.ListAPIKeysParams{AccountID: acct, Managed: ptr(true)}, 2},
				{oapi.ListAPIKeysParams{AccountID: acct, Managed: ptr(false)}, 7},
				{oapi.ListAPIKeysParams{AccountID: acct, Type: ptr(oapi.ListPublishable)}, 1},
				{oapi.ListAPIKeysParams{AccountID: acct, CreatedBy: ptr(m.SecretID)}, 7},
				{oapi.ListAPIKeysParams{AccountID: acct, CreatedBy: ptr("bootstrap")}, 2},
				{oapi.ListAPIKeysParams{AccountID: acct, Status: ptr(oapi.ListInactive)}, 0},
				{oapi.ListAPIKeysParams{AccountID: acct, Deleted: ptr(true)}, 0},
			} {
				if got := len(listAll(t, admin, c.p)); got != c.want {
					t.Errorf("%+v: %d keys, want %d", c.p, got, c.want)
				}
			}
			env.Clock.Advance(25 * time.Hour) // three keys expire
			if got := len(listAll(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Status: ptr(oapi.ListExpired)})); got != 3 {
				t.Errorf("%d expired keys, want 3", got)
			}
			if got := len(listAll(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Status: ptr(oapi.ListActive)})); got != 6 {
				t.Errorf("%d active keys, want 6", got)
			}
		})
		t.Run("400 bad limit or made-up cursor", func(t *testing.T) {
			_, err := listPage(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Limit: ptr(101)})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
			_, err = listPage(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Cursor: ptr("bm90LWEtY3Vyc29y")})
			wantAPIError(t, err, 400, client.CodeValidationFailed)
		})
		t.Run("401 expired credential", func(t *testing.T) {
			_, err := listPage(t, env.Client("sk_test_x"), oapi.ListAPIKeysParams{AccountID: acct})
			wantAPIError(t, err, 401, client.CodeInvalidCredentials)
		})
		t.Run("403 another account, no read, publishable", func(t *testing.T) {
			env.Bootstrap("acct_other_list")
			_, err := listPage(t, admin, oapi.ListAPIKeysParams{AccountID: "acct_other_list"})
			wantAPIError(t, err, 403, client.CodeAccountForbidden)
			_, err = listPage(t, env.Client(secrets[1]), oapi.ListAPIKeysParams{AccountID: acct})
			wantAPIError(t, err, 403, client.CodePermissionDenied)
			_, err = listPage(t, env.Client(m.Publishable), oapi.ListAPIKeysParams{AccountID: acct})
			wantAPIError(t, err, 403, client.CodePublishableKeyForbidden)
		})
		t.Run("404 account that does not exist (JWT)", func(t *testing.T) {
			jwt := env.JWT.Sign(t, env.JWT.Claims("ops", []string{"acct_ghost"}, []string{"account:api:key:read"}, "test"))
			_, err := listPage(t, env.Client(jwt), oapi.ListAPIKeysParams{AccountID: "acct_ghost"})
			wantAPIError(t, err, 404, client.CodeAccountNotFound)
		})
	})
}

// Paging while keys are created and deleted concurrently: every key that
// existed before the walk and was not deleted during it is seen exactly
// once; nothing is seen twice.
func TestListAPIKeysUnderChurn(t *testing.T) {
	eachStore(t, func(t *testing.T, cfg testenv.Config) {
		env := testenv.New(t, cfg)
		m := env.Bootstrap(acct)[sandbox]
		admin := env.Client(m.Secret)
		var stable []string
		var doomed []*client.APIKey
		for i := range 30 {
			k := customKey(t, env, m, fmt.Sprintf("stable %d", i), client.Permissions{}, nil)
			stable = append(stable, k.ID)
			doomed = append(doomed, customKey(t, env, m, fmt.Sprintf("doomed %d", i), client.Permissions{}, nil))
		}
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // churn: create new keys and delete the doomed ones while the walk runs
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				if i < len(doomed) {
					if _, err := deleteKey(t, admin, doomed[i].ID); err != nil {
						t.Errorf("delete: %v", err)
					}
				}
				if _, err := admin.CreateAPIKey(ctx, acct, newKeyReq(fmt.Sprintf("new %d", i), client.Permissions{})); err != nil {
					t.Errorf("create: %v", err)
				}
			}
		}()
		seen := map[string]int{}
		for _, k := range listAll(t, admin, oapi.ListAPIKeysParams{AccountID: acct, Limit: ptr(4)}) {
			seen[k.ID]++
		}
		close(stop)
		wg.Wait()
		for id, n := range seen {
			if n > 1 {
				t.Fatalf("key %s listed %d times", id, n)
			}
		}
		for _, id := range stable {
			if seen[id] != 1 {
				t.Fatalf("key %s that existed throughout was skipped", id)
			}
		}
	})
}
