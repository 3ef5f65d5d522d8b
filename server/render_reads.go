package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apikey"
)

// The read operations' 200 answers (a key, a page of keys; a page of audit
// events: render_audit.go) are appended by hand from the keys as read into
// one pooled buffer, rather than converted to the generated types
// (toAPIKeyView: ~25 small allocations a key for the pointers, maps and
// lists it makes) and encoded by reflection, which was ~30% of a key page's
// CPU after the store. The bytes are encoding/json's of
// viewEnvelope(k, now) and of the generated list envelope (fields in the
// generated types' order, omitempty as tagged, map keys sorted, HTML
// escaping, times as time.Time.MarshalJSON, a newline at the end):
// TestKeyRenderingIsEncodingJSON holds them equal on random keys.
type (
	getKeyResponse struct {
		key *apikey.Key
		now time.Time
	}
	listKeysResponse struct {
		keys []*apikey.Key
		next string // the next page's cursor; "" on the last page
		now  time.Time
	}
	// listEventsResponse: render_audit.go.
)

func (r *getKeyResponse) VisitGetApiKeyResponse(w http.ResponseWriter) error {
	return writeAppended(w, func(b []byte) ([]byte, error) {
		b = append(b, `{"data":`...)
		b, err := appendKeyView(b, r.key, r.now)
		return append(b, `,"message":"success","success":true}`+"\n"...), err
	})
}

func (r *listKeysResponse) VisitListApiKeysResponse(w http.ResponseWriter) error {
	return writeAppended(w, func(b []byte) ([]byte, error) {
		b = append(b, `{"data":{"data":[`...)
		for i, k := range r.keys {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendKeyView(b, k, r.now); err != nil {
				return b, err
			}
		}
		b = append(b, `],"has_more":`...)
		if r.next != "" {
			b = append(b, `true,"next_cursor":`...)
			b = appendJSONString(b, r.next)
		} else {
			b = append(b, `false,"next_cursor":null`...)
		}
		return append(b, `,"object":"`+string(api.ApiKeyListObjectList)+`"},"message":"success","success":true}`+"\n"...), nil
	})
}

// appendKeyView appends the JSON of toAPIKeyView(k, now) (see render.go
// for what each field shows).
func appendKeyView(b []byte, k *apikey.Key, now time.Time) ([]byte, error) {
	var err error
	b = append(b, `{"account_id":`...)
	b = appendJSONString(b, k.AccountID)
	if len(k.AllowedNetworks) > 0 {
		b = append(b, `,"allowed_networks":[`...)
		for i, p := range k.AllowedNetworks {
			if i > 0 {
				b = append(b, ',')
			}
			// A prefix's text (digits, hex, dots, colons, a slash) has
			// nothing to escape. AppendTo writes nothing for the zero
			// Prefix, whose String is "invalid Prefix".
			if p.IsValid() {
				b = append(b, '"')
				b = p.AppendTo(b)
				b = append(b, '"')
			} else {
				b = appendJSONString(b, p.String())
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"created_at":`...)
	if b, err = appendTime(b, k.CreatedAt); err != nil {
		return b, err
	}
	b = append(b, `,"created_by":{"id":`...)
	b = appendJSONString(b, k.CreatedBy.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, k.CreatedBy.Kind)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, k.CreatedBy.RequestID)
	b = append(b, '}')
	if c := k.Credits.At(now); c != nil {
		b = append(b, `,"credits":{`...)
		if r := c.Refill; r != nil {
			b = append(b, `"refill":{"amount":`...)
			b = strconv.AppendInt(b, r.Amount, 10)
			if r.Interval == apikey.RefillMonthly {
				b = append(b, `,"day":`...)
				b = strconv.AppendInt(b, int64(r.Day), 10)
			}
			b = append(b, `,"interval":`...)
			b = appendJSONString(b, r.Interval)
			b = append(b, `},`...)
		}
		b = append(b, `"remaining":`...)
		b = strconv.AppendInt(b, c.Remaining, 10)
		b = append(b, '}')
	}
	b = append(b, `,"deleted":`...)
	b = strconv.AppendBool(b, k.Deleted)
	b = append(b, `,"expires_at":`...)
	if b, err = appendTimePtr(b, k.ExpiresAt); err != nil {
		return b, err
	}
	b = append(b, `,"id":`...)
	b = appendJSONString(b, k.ID)
	b = append(b, `,"key_hint":`...)
	if k.KeyHint == "" {
		b = append(b, `null`...)
	} else {
		b = appendJSONString(b, k.KeyHint)
	}
	b = append(b, `,"last_used_at":`...)
	if b, err = appendTimePtr(b, k.LastUsedAt); err != nil {
		return b, err
	}
	b = append(b, `,"last_used_ip":`...)
	if k.LastUsedIP == nil {
		b = append(b, `null`...)
	} else {
		b = appendJSONString(b, *k.LastUsedIP)
	}
	b = append(b, `,"managed":`...)
	b = strconv.AppendBool(b, k.Managed)
	b = append(b, `,"metadata":`...)
	b = appendMetadata(b, k.Metadata)
	b = append(b, `,"name":`...)
	b = appendJSONString(b, k.Name)
	b = append(b, `,"object":"`+string(api.ApiKeyViewObjectApiKey)+`","permissions":`...)
	if k.Permissions == nil {
		b = append(b, `{}`...) // toAPIKeyView's empty object, not encoding/json's null
	} else {
		b = appendPermissions(b, k.Permissions)
	}
	b = append(b, `,"previous_key_expires_at":`...)
	if b, err = appendTimePtr(b, activeUntil(k.PrevSecretExpiresAt, now)); err != nil {
		return b, err
	}
	if rl := k.RateLimit; rl != nil {
		b = append(b, `,"rate_limit":{"limit":`...)
		b = strconv.AppendInt(b, int64(rl.Limit), 10)
		b = append(b, `,"window":`...)
		b = appendJSONString(b, rl.WindowString())
		b = append(b, '}')
	}
	b = append(b, `,"status":`...)
	if k.Status == apikey.StatusActive && k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		b = append(b, `"`+string(api.EXPIRED)+`"`...)
	} else {
		b = appendJSONString(b, k.Status)
	}
	b = append(b, `,"type":`...)
	b = appendJSONString(b, k.Type)
	b = append(b, `,"updated_at":`...)
	if b, err = appendTime(b, k.UpdatedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
