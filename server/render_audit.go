package server

import (
	"net/http"
	"strconv"

	json "github.com/goccy/go-json"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// listEventsResponse is a page of audit events as listAuditEvents answers
// it: api.AuditEventListEnvelope's JSON (a page of events, has_more true
// when next is a cursor), written by appendEventPage rather than by an
// encoder's reflection over the generated types. A page is 100 events by
// default; encoding it (after converting each event to api.AuditEvent, its
// changes a map) was ~18% of the operation's CPU, and the changes' map
// itself another ~15% to read. Here each field is appended to one pooled
// buffer, the changes as the store read them (audit.Event.ChangesJSON,
// encoding/json's bytes of the map), and the buffer goes out in one Write.
// TestReadRenderingIsEncodingJSON holds the bytes to encoding/json's of the
// generated envelope.
type listEventsResponse struct {
	events []audit.Event
	next   string // the next page's cursor; "" on the last page
}

func (r *listEventsResponse) VisitListAuditEventsResponse(w http.ResponseWriter) error {
	return writeAppended(w, func(b []byte) ([]byte, error) { return appendEventPage(b, r.events, r.next) })
}

// appendEventPage appends the JSON of the envelope (fields in the generated
// types' order, a newline at the end as json.Encoder writes).
func appendEventPage(b []byte, events []audit.Event, next string) ([]byte, error) {
	b = append(b, `{"data":{"data":[`...)
	for i := range events {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendEvent(b, &events[i]); err != nil {
			return b, err
		}
	}
	b = append(b, `],"has_more":`...)
	if next != "" {
		b = append(b, `true,"next_cursor":`...)
		b = appendJSONText(b, next)
	} else {
		b = append(b, `false,"next_cursor":null`...)
	}
	b = append(b, `,"object":"`+string(api.AuditEventListObjectList)+`"},"message":"success","success":true}`+"\n"...)
	return b, nil
}

// appendEvent appends the JSON of e as an api.AuditEvent (changes never null).
func appendEvent(b []byte, e *audit.Event) ([]byte, error) {
	b = append(b, `{"account_id":`...)
	b = appendJSONText(b, e.AccountID)
	b = append(b, `,"action":`...)
	b = appendJSONText(b, e.Action)
	b = append(b, `,"actor":{"id":`...)
	b = appendJSONText(b, e.Actor.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONText(b, e.Actor.Kind)
	b = append(b, `,"request_id":`...)
	b = appendJSONText(b, e.Actor.RequestID)
	b = append(b, `},"changes":`...)
	switch {
	case e.Changes == nil && e.ChangesJSON != "":
		b = append(b, e.ChangesJSON...)
	case e.Changes == nil:
		b = append(b, `{}`...)
	default: // not read by a page: encode the map
		c, err := json.Marshal(e.Changes)
		if err != nil {
			return b, err
		}
		b = append(b, c...)
	}
	b = append(b, `,"client_ip":`...)
	b = appendJSONText(b, e.ClientIP)
	b = append(b, `,"created_at":"`...)
	// time.Time's MarshalJSON, without its allocation: the same strict
	// RFC 3339 form, refusing the same times (a year past 9999).
	b, err := e.CreatedAt.AppendText(b)
	if err != nil {
		return b, err
	}
	b = append(b, `","hash":`...)
	b = appendJSONText(b, e.Hash)
	b = append(b, `,"id":`...)
	b = appendJSONText(b, e.ID)
	b = append(b, `,"key_id":`...)
	b = appendJSONText(b, e.KeyID)
	b = append(b, `,"mode":`...)
	b = appendJSONText(b, string(e.Mode))
	b = append(b, `,"object":"`+string(api.AuditEventObjectAuditEvent)+`","prev_hash":`...)
	b = appendJSONText(b, e.PrevHash)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	return append(b, '}'), nil
}
