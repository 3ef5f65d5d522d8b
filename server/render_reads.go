package server

import (
	"net/http"

	json "github.com/goccy/go-json"
	"github.com/labstack/echo/v4"

	"github.com/hsrcpay/apikeys/gen/api"
)

// The read operations' 200 answers (a key, a page of keys; a page of audit
// events is written by hand, render_audit.go) are encoded by goccy/go-json
// instead of the generated responses' encoding/json, whose reflection,
// map-key sorting through reflect.Value and compaction of each time's
// MarshalJSON were the largest part of a page's CPU after the store (~20% of
// a key page, ~30% of an audit page). Its Encoder writes encoding/json's
// bytes (HTML escaping on, maps with sorted keys, times as
// time.Time.MarshalJSON, invalid UTF-8 as \ufffd, a newline at the end),
// which TestReadRenderingIsEncodingJSON checks on values that fill every
// field of the generated types. The generated Visit functions call
// encoding/json themselves, hence these response types.
type (
	getKeyResponse   struct{ body api.ApiKeyViewEnvelope }
	listKeysResponse struct{ body api.ApiKeyListEnvelope }
	// listEventsResponse: render_audit.go.
)

func (r *getKeyResponse) VisitGetApiKeyResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body)
}

func (r *listKeysResponse) VisitListApiKeysResponse(w http.ResponseWriter) error {
	return writeJSON(w, &r.body)
}

// writeJSON sends body as the 200 answer. The Encoder encodes into its own
// pooled buffer and writes it in one Write only once the whole value is
// encoded, so the status and headers go out with that Write: a value it
// refuses (a time MarshalJSON refuses) returns the error with nothing sent,
// as the generated responses do, and the strict handler's error envelope
// is the answer.
func writeJSON(w http.ResponseWriter, body any) error {
	return json.NewEncoder(&okWriter{w: w}).Encode(body)
}

// okWriter sets the JSON content type and the 200 status on the first Write.
type okWriter struct {
	w    http.ResponseWriter
	sent bool
}

func (o *okWriter) Write(b []byte) (int, error) {
	if !o.sent {
		o.sent = true
		o.w.Header()[echo.HeaderContentType] = jsonContentType
		o.w.WriteHeader(http.StatusOK)
	}
	return o.w.Write(b)
}

// jsonContentType is the Content-Type header's value, shared by the
// responses that set it: assigned rather than Header.Set, which allocates
// a slice per response (nothing writes into a header's value slice; Add
// appends past its capacity, so into a copy).
var jsonContentType = []string{echo.MIMEApplicationJSON}
