package client_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/hsrcpay/apikeys/client"
)

// Against the real server: a create and a regenerate whose answers are all
// lost (the server carried them out) end in an UnresolvedError, and
// resuming with its key returns what the lost attempts did, once.
func TestResumeAfterLostAnswers(t *testing.T) {
	e, m, c := lifecycleEnv(t, "acct_resume")
	lossy, err := client.New(e.URL, m.Secret, client.WithHTTPClient(&http.Client{Transport: answerLost{}}),
		client.WithRetryBudget(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	req := client.CreateAPIKeyRequest{Name: "lost answer", Permissions: client.Permissions{"payment": {"read"}}}
	_, err = lossy.CreateAPIKey(ctx, "acct_resume", req)
	var ue *client.UnresolvedError
	if !errors.As(err, &ue) || ue.Attempts < 2 || !errors.Is(err, client.ErrUnavailable) {
		t.Fatalf("%v: want an UnresolvedError after retries", err)
	}
	first, err := c.CreateAPIKey(ctx, "acct_resume", req, client.WithIdempotencyKey(ue.IdempotencyKey))
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	again, err := c.CreateAPIKey(ctx, "acct_resume", req, client.WithIdempotencyKey(ue.IdempotencyKey))
	if err != nil || again.ID != first.ID || again.Key != first.Key {
		t.Fatalf("a second resume: %v %v, want %s and its secret again", again, err, first.ID)
	}
	keys, err := client.Collect(c.ListAPIKeys(ctx, "acct_resume", client.ListAPIKeysOptions{Managed: client.Ptr(false)}))
	if err != nil || len(keys) != 1 || keys[0].ID != first.ID {
		t.Fatalf("keys after %d lost attempts and two resumes: %v %v, want only %s", ue.Attempts, keys, err, first.ID)
	}
	if v, err := c.VerifyKey(ctx, first.Key); err != nil || !v.Valid || v.ID != first.ID {
		t.Fatalf("the resumed secret: %+v %v", v, err)
	}

	// A regenerate: rotated once, whatever the attempts; the resume returns
	// the new secret, and the old one no longer works.
	_, err = lossy.RegenerateAPIKey(ctx, m.PublishableID)
	if !errors.As(err, &ue) {
		t.Fatalf("%v: want an UnresolvedError", err)
	}
	rotated, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey(ue.IdempotencyKey))
	if err != nil || rotated.Key == m.Publishable {
		t.Fatalf("resume the regenerate: %v %v", rotated, err)
	}
	if again, err := c.RegenerateAPIKey(ctx, m.PublishableID, client.WithIdempotencyKey(ue.IdempotencyKey)); err != nil || again.Key != rotated.Key {
		t.Fatalf("a second resume rotated again: %v", err)
	}
	if v, err := c.VerifyKey(ctx, m.Publishable); err != nil || v.Valid {
		t.Fatalf("the secret before the rotation still works: %+v %v", v, err)
	}
	if v, err := c.VerifyKey(ctx, rotated.Key); err != nil || !v.Valid || v.ID != m.PublishableID {
		t.Fatalf("the resumed secret: %+v %v", v, err)
	}
}
