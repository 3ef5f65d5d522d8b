package apikeys

import (
	"context"
	"time"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
	"github.com/hsrcpay/apikeys/internal/auth"
	"github.com/hsrcpay/apikeys/internal/keys"
	"github.com/hsrcpay/apikeys/internal/store"
)

// record appends the event of a change to k inside the unit that makes it,
// so that the change and its record commit or fail together. The unit must
// hold the account's lock (see store.Tx.AppendAuditEvent).
func record(ctx context.Context, tx store.Tx, mode apikey.Mode, action string, k *apikey.Key, by apikey.Actor, clientIP string, changes map[string]any, now time.Time) error {
	id, err := keys.NewEventID()
	if err != nil {
		return err
	}
	return tx.AppendAuditEvent(ctx, &audit.Event{
		ID: id, AccountID: k.AccountID, Mode: mode, Action: action, KeyID: k.ID,
		Actor: by, ClientIP: clientIP, CreatedAt: now, Changes: changes,
	})
}

// recordBy is record for a change a principal made.
func recordBy(ctx context.Context, tx store.Tx, p *auth.Principal, action string, k *apikey.Key, changes map[string]any, now time.Time) error {
	return record(ctx, tx, p.Mode, action, k, actor(p), p.ClientIP, changes, now)
}

// createdFields are what an event says of a new key: everything but secrets.
func createdFields(k *apikey.Key) map[string]any {
	m := map[string]any{
		"name": k.Name, "type": k.Type, "permissions": k.Permissions, "metadata": k.Metadata,
		"status": k.Status, "managed": k.Managed, "expires_at": timeValue(k.ExpiresAt), "key_hint": k.KeyHint,
	}
	if len(k.AllowedNetworks) > 0 { // only when restricted: events of other keys read as before
		m["allowed_networks"] = apikey.NetworkStrings(k.AllowedNetworks)
	}
	if k.RateLimit != nil {
		m["rate_limit"] = rateLimitValue(k.RateLimit)
	}
	if k.Credits != nil {
		m["credits"] = creditsValue(k.Credits)
	}
	return m
}

// timeValue is a time as events hold it: the string the API renders, or null.
func timeValue(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}
