package server

import (
	"bytes"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/hsrcpay/apikeys/gen/api"
)

// The read operations' answers (a key, a page of keys, a page of audit
// events) are written by the appenders below instead of the generated
// responses' encoding/json, whose reflection, map-key sorting through
// reflect.Value and compaction of each time's MarshalJSON were the largest
// part of a page's CPU after the store (~20% of a key page, ~30% of an audit
// page). The bytes are encoding/json's exactly — the fields in the generated
// structs' order, maps with sorted keys, strings escaped as it does with
// HTML escaping on, times as time.Time.MarshalJSON, a newline at the end —
// which TestReadRenderingIsEncodingJSON checks field by field on values that
// fill every field of the generated types (a field added to the spec and not
// here fails it). A value the appenders do not write as encoding/json would
// (a float in an audit event's changes, a string needing escapes, a time
// MarshalJSON refuses) makes the whole answer go through encoding/json.

// jsonAppender writes one answer; ok turns false at the first value it
// leaves to encoding/json.
type jsonAppender struct {
	b    []byte
	ok   bool
	keys []string // the maps' keys being written (sortedKeys)
}

// renderBuffers keeps the answers' buffers between requests (a key page is
// ~20 KB, an audit page of 100 ~60 KB); a buffer grown past maxKeptBuffer by
// an unusual answer is left to the collector.
var renderBuffers = sync.Pool{New: func() any { return new([]byte) }}

const maxKeptBuffer = 256 << 10

// writeJSON sends the 200 answer body: by the appender when it wrote it
// all, else by encoding/json as the generated response would.
func writeJSON(w http.ResponseWriter, body any, appendBody func(*jsonAppender)) error {
	bp := renderBuffers.Get().(*[]byte)
	defer func() {
		if cap(*bp) <= maxKeptBuffer {
			renderBuffers.Put(bp)
		}
	}()
	a := jsonAppender{b: (*bp)[:0], ok: true}
	appendBody(&a)
	out := a.b
	*bp = a.b
	if !a.ok {
		var buf bytes.Buffer
		if err := json.NewEncoder(&buf).Encode(body); err != nil {
			return err
		}
		out = buf.Bytes()
	} else {
		out = append(out, '\n') // as json.Encoder ends each value
		*bp = out
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err := w.Write(out)
	return err
}

func (a *jsonAppender) raw(s string) { a.b = append(a.b, s...) }

// str writes s as encoding/json does: plain when it needs no escape (ASCII
// above the controls other than " \ < > &, or valid UTF-8 other than
// U+2028 and U+2029), else by json.Marshal.
func (a *jsonAppender) str(s string) {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
				a.escaped(s)
				return
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			a.escaped(s)
			return
		}
		i += size
	}
	a.b = append(a.b, '"')
	a.b = append(a.b, s...)
	a.b = append(a.b, '"')
}

func (a *jsonAppender) escaped(s string) {
	q, err := json.Marshal(s) // a string always encodes
	if err != nil {
		a.ok = false
		return
	}
	a.b = append(a.b, q...)
}

func (a *jsonAppender) boolean(v bool) { a.b = strconv.AppendBool(a.b, v) }

// time writes t as time.Time.MarshalJSON does; a time it refuses (a year
// outside 0-9999, an offset of a day or more) is left to encoding/json,
// which then fails as before.
func (a *jsonAppender) time(t time.Time) {
	_, off := t.Zone()
	if y := t.Year(); y < 0 || y > 9999 || off <= -24*3600 || off >= 24*3600 {
		a.ok = false
		return
	}
	a.b = append(a.b, '"')
	a.b = t.AppendFormat(a.b, time.RFC3339Nano)
	a.b = append(a.b, '"')
}

func (a *jsonAppender) timePtr(t *time.Time) {
	if t == nil {
		a.raw("null")
		return
	}
	a.time(*t)
}

func (a *jsonAppender) strPtr(s *string) {
	if s == nil {
		a.raw("null")
		return
	}
	a.str(*s)
}

func (a *jsonAppender) createdBy(c *api.CreatedBy) {
	a.raw(`{"id":`)
	a.str(c.Id)
	a.raw(`,"kind":`)
	a.str(string(c.Kind))
	a.raw(`,"request_id":`)
	a.str(c.RequestId)
	a.raw(`}`)
}

// sortedKeys appends m's keys to a.keys, sorted in encoding/json's order
// (bytewise), and returns them with the length to cut a.keys back to when
// done: one scratch slice for every map of the answer, nested ones
// included (they append after, leaving these in place).
func sortedKeys[V any](a *jsonAppender, m map[string]V) (keys []string, mark int) {
	mark = len(a.keys)
	for k := range m {
		a.keys = append(a.keys, k)
	}
	keys = a.keys[mark:]
	slices.Sort(keys)
	return keys, mark
}

func (a *jsonAppender) metadata(m api.Metadata) {
	if m == nil {
		a.raw("null")
		return
	}
	a.raw("{")
	keys, mark := sortedKeys(a, m)
	for i, k := range keys {
		if i > 0 {
			a.raw(",")
		}
		a.str(k)
		a.raw(":")
		a.str(m[k])
	}
	a.keys = a.keys[:mark]
	a.raw("}")
}

func (a *jsonAppender) permissions(m api.Permissions) {
	if m == nil {
		a.raw("null")
		return
	}
	a.raw("{")
	keys, mark := sortedKeys(a, m)
	for i, k := range keys {
		if i > 0 {
			a.raw(",")
		}
		a.str(k)
		a.raw(":")
		a.strings(m[k])
	}
	a.keys = a.keys[:mark]
	a.raw("}")
}

func (a *jsonAppender) strings(l []string) {
	if l == nil {
		a.raw("null")
		return
	}
	a.raw("[")
	for i, s := range l {
		if i > 0 {
			a.raw(",")
		}
		a.str(s)
	}
	a.raw("]")
}

// value writes an audit event's change: what the stores read back
// (auditrow.Decode): strings, booleans, nulls, integers as json.Number,
// maps and lists of them. A float or another type is left to encoding/json.
func (a *jsonAppender) value(v any) {
	switch v := v.(type) {
	case nil:
		a.raw("null")
	case string:
		a.str(v)
	case bool:
		a.boolean(v)
	case json.Number:
		if !plainInteger(string(v)) {
			a.ok = false
			return
		}
		a.raw(string(v))
	case map[string]any:
		a.object(v)
	case []any:
		if v == nil {
			a.raw("null")
			return
		}
		a.raw("[")
		for i, e := range v {
			if i > 0 {
				a.raw(",")
			}
			a.value(e)
		}
		a.raw("]")
	default:
		a.ok = false
	}
}

func (a *jsonAppender) object(m map[string]any) {
	if m == nil {
		a.raw("null")
		return
	}
	a.raw("{")
	keys, mark := sortedKeys(a, m)
	for i, k := range keys {
		if i > 0 {
			a.raw(",")
		}
		a.str(k)
		a.raw(":")
		a.value(m[k])
	}
	a.keys = a.keys[:mark]
	a.raw("}")
}

// plainInteger: s is -?[0-9]+ (what encoding/json writes as it is).
func plainInteger(s string) bool {
	if s != "" && s[0] == '-' {
		s = s[1:]
	}
	if s == "" || len(s) > 1 && s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (a *jsonAppender) keyView(k *api.ApiKeyView) {
	a.raw(`{"account_id":`)
	a.str(k.AccountId)
	a.raw(`,"created_at":`)
	a.time(k.CreatedAt)
	a.raw(`,"created_by":`)
	a.createdBy(&k.CreatedBy)
	a.raw(`,"deleted":`)
	a.boolean(k.Deleted)
	a.raw(`,"expires_at":`)
	a.timePtr(k.ExpiresAt)
	a.raw(`,"id":`)
	a.str(k.Id)
	a.raw(`,"key_hint":`)
	a.strPtr(k.KeyHint)
	a.raw(`,"last_used_at":`)
	a.timePtr(k.LastUsedAt)
	a.raw(`,"last_used_ip":`)
	a.strPtr(k.LastUsedIp)
	a.raw(`,"managed":`)
	a.boolean(k.Managed)
	a.raw(`,"metadata":`)
	a.metadata(k.Metadata)
	a.raw(`,"name":`)
	a.str(k.Name)
	a.raw(`,"object":`)
	a.str(string(k.Object))
	a.raw(`,"permissions":`)
	a.permissions(k.Permissions)
	a.raw(`,"previous_key_expires_at":`)
	a.timePtr(k.PreviousKeyExpiresAt)
	a.raw(`,"status":`)
	a.str(string(k.Status))
	a.raw(`,"type":`)
	a.str(string(k.Type))
	a.raw(`,"updated_at":`)
	a.time(k.UpdatedAt)
	a.raw(`}`)
}

func (a *jsonAppender) auditEvent(e *api.AuditEvent) {
	a.raw(`{"account_id":`)
	a.str(e.AccountId)
	a.raw(`,"action":`)
	a.str(string(e.Action))
	a.raw(`,"actor":`)
	a.createdBy(&e.Actor)
	a.raw(`,"changes":`)
	a.object(e.Changes)
	a.raw(`,"client_ip":`)
	a.str(e.ClientIp)
	a.raw(`,"created_at":`)
	a.time(e.CreatedAt)
	a.raw(`,"hash":`)
	a.str(e.Hash)
	a.raw(`,"id":`)
	a.str(e.Id)
	a.raw(`,"key_id":`)
	a.str(e.KeyId)
	a.raw(`,"mode":`)
	a.str(string(e.Mode))
	a.raw(`,"object":`)
	a.str(string(e.Object))
	a.raw(`,"prev_hash":`)
	a.str(e.PrevHash)
	a.raw(`,"seq":`)
	a.b = strconv.AppendInt(a.b, int64(e.Seq), 10)
	a.raw(`}`)
}

// envelopeEnd closes {"data":…} with the envelope's message and success.
func (a *jsonAppender) envelopeEnd(message string, success bool) {
	a.raw(`,"message":`)
	a.str(message)
	a.raw(`,"success":`)
	a.boolean(success)
	a.raw(`}`)
}

func (a *jsonAppender) keyViewEnvelope(env *api.ApiKeyViewEnvelope) {
	a.raw(`{"data":`)
	a.keyView(&env.Data)
	a.envelopeEnd(env.Message, env.Success)
}

func (a *jsonAppender) keyListEnvelope(env *api.ApiKeyListEnvelope) {
	l := &env.Data
	a.raw(`{"data":{"data":`)
	if l.Data == nil {
		a.raw("null")
	} else {
		a.raw("[")
		for i := range l.Data {
			if i > 0 {
				a.raw(",")
			}
			a.keyView(&l.Data[i])
		}
		a.raw("]")
	}
	a.raw(`,"has_more":`)
	a.boolean(l.HasMore)
	a.raw(`,"next_cursor":`)
	a.strPtr(l.NextCursor)
	a.raw(`,"object":`)
	a.str(string(l.Object))
	a.raw(`}`)
	a.envelopeEnd(env.Message, env.Success)
}

func (a *jsonAppender) auditListEnvelope(env *api.AuditEventListEnvelope) {
	l := &env.Data
	a.raw(`{"data":{"data":`)
	if l.Data == nil {
		a.raw("null")
	} else {
		a.raw("[")
		for i := range l.Data {
			if i > 0 {
				a.raw(",")
			}
			a.auditEvent(&l.Data[i])
		}
		a.raw("]")
	}
	a.raw(`,"has_more":`)
	a.boolean(l.HasMore)
	a.raw(`,"next_cursor":`)
	a.strPtr(l.NextCursor)
	a.raw(`,"object":`)
	a.str(string(l.Object))
	a.raw(`}`)
	a.envelopeEnd(env.Message, env.Success)
}

// The read operations' 200 answers, rendered as above.
type (
	getKeyResponse     struct{ body api.ApiKeyViewEnvelope }
	listKeysResponse   struct{ body api.ApiKeyListEnvelope }
	listEventsResponse struct{ body api.AuditEventListEnvelope }
)

func (r *getKeyResponse) VisitGetApiKeyResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body, func(a *jsonAppender) { a.keyViewEnvelope(&r.body) })
}

func (r *listKeysResponse) VisitListApiKeysResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body, func(a *jsonAppender) { a.keyListEnvelope(&r.body) })
}

func (r *listEventsResponse) VisitListAuditEventsResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body, func(a *jsonAppender) { a.auditListEnvelope(&r.body) })
}
