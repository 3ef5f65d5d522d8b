package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
	"github.com/hsrcpay/apikeys/internal/perm"
	"github.com/hsrcpay/apikeys/internal/store/storetest"
)

// TestCapUnderConcurrentCreates: creates on one account below its cap send
// their writes before they hold the account's lock, the lock's statement
// checking the count of keys not deleted (KeyCapReached). Racing creates
// still stop exactly at the cap, and an account whose keys not deleted
// reach the cap while some have expired still takes new keys (the unit runs
// again, counting under the lock).
func TestCapUnderConcurrentCreates(t *testing.T) {
	ctx := t.Context()
	st := open(t, storetest.FreshPostgresDB(t))
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	catalog, err := perm.LoadCatalog(doc)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	clock := now
	var mu sync.Mutex
	const limit = 6
	svc := apikeys.New(st, catalog, apikeys.Options{MaxActiveKeys: limit, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return clock
	}})
	_, p, _ := bootstrap(t, st, "acct_cap") // two managed keys, under the default service
	var wg sync.WaitGroup
	var created, refused, failed int
	var rmu sync.Mutex
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := svc.Create(ctx, p, "acct_cap", apikeys.CreateInput{Name: fmt.Sprintf("racer %d", i)})
			rmu.Lock()
			defer rmu.Unlock()
			switch {
			case err == nil:
				created++
			case isCode(err, api.CodeKeyLimitReached):
				refused++
			default:
				failed++
				t.Errorf("create %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if created != limit-2 || refused != 16-(limit-2) || failed != 0 {
		t.Fatalf("created %d, refused %d (failed %d); want %d and %d", created, refused, failed, limit-2, 16-(limit-2))
	}
	keys, err := st.Repo(apikey.Sandbox).ListManagedKeys(ctx, "acct_cap")
	if err != nil || len(keys) != 2 {
		t.Fatalf("managed keys %d, %v", len(keys), err)
	}

	// An expiring key: once it expired, the account (limit keys not
	// deleted) holds limit-1 active keys and takes one more.
	_, p2, _ := bootstrap(t, st, "acct_expiring")
	soon := now.Add(time.Minute)
	for i := range limit - 2 {
		in := apikeys.CreateInput{Name: fmt.Sprintf("k%d", i)}
		if i == 0 {
			in.ExpiresAt = &soon
		}
		if _, err := svc.Create(ctx, p2, "acct_expiring", in); err != nil {
			t.Fatalf("create k%d: %v", i, err)
		}
	}
	if _, err := svc.Create(ctx, p2, "acct_expiring", apikeys.CreateInput{Name: "over"}); !isCode(err, api.CodeKeyLimitReached) {
		t.Fatalf("at the cap: %v, want %v", err, api.CodeKeyLimitReached)
	}
	mu.Lock()
	clock = now.Add(2 * time.Minute)
	mu.Unlock()
	if _, err := svc.Create(ctx, p2, "acct_expiring", apikeys.CreateInput{Name: "over"}); err != nil {
		t.Fatalf("after one expired: %v", err)
	}
	if _, err := svc.Create(ctx, p2, "acct_expiring", apikeys.CreateInput{Name: "over again"}); !isCode(err, api.CodeKeyLimitReached) {
		t.Fatalf("at the cap again: %v, want %v", err, api.CodeKeyLimitReached)
	}
	if _, err := apikeys.VerifyAudit(context.Background(), st); err != nil {
		t.Fatalf("audit chains: %v", err)
	}
}

func isCode(err error, code api.ErrorCode) bool {
	var e *apierr.Error
	return errors.As(err, &e) && e.Code == code
}
