package server

import (
	"net/http"
	"strconv"
	"sync"
	"unicode/utf8"

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
	bp := pageBuffers.Get().(*[]byte) //nolint:forcetypeassert // the pool holds only these
	defer func() {
		if cap(*bp) <= 4<<20 { // a larger page's buffer is let go
			pageBuffers.Put(bp)
		}
	}()
	b, err := appendEventPage((*bp)[:0], r.events, r.next)
	*bp = b
	if err != nil {
		return err // nothing sent: the strict handler's error envelope is the answer
	}
	w.Header()["Content-Type"] = jsonContentType
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(b)
	return err
}

var pageBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

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
		b = appendJSONString(b, next)
	} else {
		b = append(b, `false,"next_cursor":null`...)
	}
	b = append(b, `,"object":"`+string(api.AuditEventListObjectList)+`"},"message":"success","success":true}`+"\n"...)
	return b, nil
}

// appendEvent appends the JSON of e as an api.AuditEvent (changes never null).
func appendEvent(b []byte, e *audit.Event) ([]byte, error) {
	b = append(b, `{"account_id":`...)
	b = appendJSONString(b, e.AccountID)
	b = append(b, `,"action":`...)
	b = appendJSONString(b, e.Action)
	b = append(b, `,"actor":{"id":`...)
	b = appendJSONString(b, e.Actor.ID)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, e.Actor.Kind)
	b = append(b, `,"request_id":`...)
	b = appendJSONString(b, e.Actor.RequestID)
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
	b = appendJSONString(b, e.ClientIP)
	b = append(b, `,"created_at":"`...)
	// time.Time's MarshalJSON, without its allocation: the same strict
	// RFC 3339 form, refusing the same times (a year past 9999).
	b, err := e.CreatedAt.AppendText(b)
	if err != nil {
		return b, err
	}
	b = append(b, `","hash":`...)
	b = appendJSONString(b, e.Hash)
	b = append(b, `,"id":`...)
	b = appendJSONString(b, e.ID)
	b = append(b, `,"key_id":`...)
	b = appendJSONString(b, e.KeyID)
	b = append(b, `,"mode":`...)
	b = appendJSONString(b, string(e.Mode))
	b = append(b, `,"object":"`+string(api.AuditEventObjectAuditEvent)+`","prev_hash":`...)
	b = appendJSONString(b, e.PrevHash)
	b = append(b, `,"seq":`...)
	b = strconv.AppendInt(b, e.Seq, 10)
	return append(b, '}'), nil
}

// appendJSONString appends s quoted as encoding/json writes a string with
// HTML escaping on: ", \ and the controls escaped (\b, \f, \n, \r, \t
// short), <, > and & as \u003c, \u003e and \u0026, U+2028 and U+2029
// escaped, invalid UTF-8 as \ufffd; everything else as it is.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && htmlSafe[s[i]] {
		i++ // the common case, ids and hashes: nothing to escape
	}
	if i == len(s) {
		b = append(b, s...)
		return append(b, '"')
	}
	start := 0
	for i < len(s) {
		if c := s[i]; c < utf8.RuneSelf {
			if htmlSafe[c] {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// htmlSafe is the ASCII encoding/json writes as it is with HTML escaping
// on: not a control, ", \, <, > or &.
var htmlSafe = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()
