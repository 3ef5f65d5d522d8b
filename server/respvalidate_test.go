package server_test

import (
	"math"
	"testing"

	"github.com/hsrcpay/apikeys/client"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/metrics"
	"github.com/hsrcpay/apikeys/internal/testenv"
)

// validatedCount reads one series of hsrcpay_responses_validated_total.
func validatedCount(t *testing.T, m *metrics.Metrics, result string) float64 {
	t.Helper()
	mfs, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hsrcpay_responses_validated_total" {
			continue
		}
		for _, mt := range mf.GetMetric() {
			if mt.GetLabel()[0].GetValue() == result {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestResponseValidationModes: with every response checked (tests, CI,
// HSRCPAY_VALIDATE_RESPONSES=true) the rejections at authentication, rate
// limit and permission are checked too; with a sample (production) they
// never are, whatever the share, and the requests past those checks are
// checked as sampled; with false, nothing is. Each check is counted.
func TestResponseValidationModes(t *testing.T) {
	// The largest share below 1: sampled, yet every draw is inside it
	// (rand.Float64 would have to return its largest value to miss).
	almostAll := math.Nextafter(1, 0)
	for _, tc := range []struct {
		name                   string
		cfg                    testenv.Config
		wantRejected, wantPass float64 // checks per request
	}{
		{"every", testenv.Config{}, 1, 1},
		{"sampled", testenv.Config{SampleResponses: almostAll}, 0, 1},
		{"off", testenv.Config{NoResponseValidation: true}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := metrics.New()
			tc.cfg.Metrics = m
			tc.cfg.RateLimits = map[apikey.Mode]int{apikey.Live: 1000, apikey.Sandbox: 3}
			env := testenv.New(t, tc.cfg)
			managed := env.Bootstrap(acct)[apikey.Sandbox]
			checked := func() float64 { return validatedCount(t, m, "valid") }
			// A secret key that may not create: its refusals spend its own
			// budget (a publishable key's would spend the address's).
			reader, err := env.Client(managed.Secret).CreateAPIKey(ctx, acct, newKeyReq("reader", client.Permissions{"payment": {"read"}}))
			if err != nil {
				t.Fatal(err)
			}

			before := checked()
			// 401: a broken key, one no one was issued.
			for _, tok := range []string{breakChecksum(managed.Secret), forged(t, keys.KindSecret, true)} {
				if _, err := env.Client(tok).GetAPIKey(ctx, managed.SecretID); err == nil {
					t.Fatal("no error")
				} else if st, _ := statusOf(t, err); st != 401 {
					t.Fatalf("status %d", st)
				}
			}
			// 403: a key without the permission may not create; then 429 once over its budget of 3.
			pub := env.Client(reader.Key)
			var statuses []int
			for range 4 {
				_, err := pub.CreateAPIKey(ctx, acct, newKeyReq("x", client.Permissions{}))
				st, _ := statusOf(t, err)
				statuses = append(statuses, st)
			}
			if statuses[0] != 403 || statuses[3] != 429 {
				t.Fatalf("statuses %v, want 403 … 429", statuses)
			}
			if got, want := checked()-before, tc.wantRejected*6; got != want {
				t.Errorf("rejections: %v responses checked, want %v", got, want)
			}

			before = checked()
			if _, err := env.Client(managed.Secret).GetAPIKey(ctx, managed.SecretID); err != nil {
				t.Fatal(err)
			}
			if got := checked() - before; got != tc.wantPass {
				t.Errorf("a request past the checks: %v responses checked, want %v", got, tc.wantPass)
			}
			if bad := validatedCount(t, m, "invalid"); bad != 0 {
				t.Errorf("%v invalid responses", bad)
			}
		})
	}
}
