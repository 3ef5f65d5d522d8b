package client

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Error is an API error: the envelope's code, message and details, the HTTP
// status and the request id to quote to support.
type Error struct {
	StatusCode int
	Code       ErrorCode // 0 when the body was not the API's envelope (e.g. a proxy's page)
	Message    string
	Details    map[string]any
	RequestID  string
	// Fields lists the failing fields of a validation error (code 40000).
	Fields []FieldError
	// RetryAfter is set on 429.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	s := fmt.Sprintf("hsrcpay: %d %s (code %d)", e.StatusCode, e.Message, e.Code)
	if e.RequestID != "" {
		s += " request_id=" + e.RequestID
	}
	return s
}

// Kinds of error, for errors.Is; each matches a family of statuses, so
// callers never switch on status codes.
var (
	ErrInvalidRequest = &kind{"invalid request", []int{400, 413, 415}}
	ErrUnauthorized   = &kind{"unauthorized", []int{401}}
	ErrForbidden      = &kind{"forbidden", []int{403}}
	ErrNotFound       = &kind{"not found", []int{404}}
	ErrConflict       = &kind{"conflict", []int{409}}
	ErrUnprocessable  = &kind{"unprocessable", []int{422}}
	ErrRateLimited    = &kind{"rate limited", []int{429}}
	ErrServer         = &kind{"server error", nil} // any 5xx
)

type kind struct {
	name     string
	statuses []int
}

func (k *kind) Error() string { return "hsrcpay: " + k.name }

// Is lets errors.Is(err, client.ErrNotFound) work.
func (e *Error) Is(target error) bool {
	k, ok := target.(*kind)
	if !ok {
		return false
	}
	if k == ErrServer {
		return e.StatusCode >= 500
	}
	for _, s := range k.statuses {
		if s == e.StatusCode {
			return true
		}
	}
	return false
}

// ParseError reads an error response (for users of Raw).
func ParseError(res *http.Response, body []byte) error {
	e := &Error{StatusCode: res.StatusCode, Message: http.StatusText(res.StatusCode), RequestID: res.Header.Get("X-Request-Id")}
	var env struct {
		Message string `json:"message"`
		Error   struct {
			Code    ErrorCode      `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error.Code != 0 {
		e.Code, e.Message, e.Details = env.Error.Code, env.Error.Message, env.Error.Details
		if rid, ok := e.Details["request_id"].(string); ok && rid != "" {
			e.RequestID = rid
		}
		var fields struct {
			Error struct {
				Details struct {
					Errors []FieldError `json:"errors"`
				} `json:"details"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &fields) == nil {
			e.Fields = fields.Error.Details.Errors
		}
	}
	if s, err := strconv.Atoi(res.Header.Get("Retry-After")); err == nil && s >= 0 {
		e.RetryAfter = time.Duration(s) * time.Second
	}
	return e
}
