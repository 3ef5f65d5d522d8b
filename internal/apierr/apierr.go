// Package apierr is the one error type handlers and middlewares return; the
// server renders it as the spec's error envelope. Codes come from the spec.
package apierr

import (
	"fmt"

	"github.com/hsrcpay/apikeys/gen/api"
)

// Error is an API error: HTTP status, stable code, message and details.
type Error struct {
	Status  int
	Code    api.ErrorCode
	Message string
	Details map[string]any
	// Headers are extra response headers, e.g. Retry-After.
	Headers map[string]string
	// Cause is logged, never sent.
	Cause error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("%d %d %s: %v", e.Status, e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("%d %d %s", e.Status, e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Cause }

// With returns a copy with one more detail.
func (e *Error) With(key string, v any) *Error {
	c := *e
	c.Details = make(map[string]any, len(e.Details)+1)
	for k, v := range e.Details {
		c.Details[k] = v
	}
	c.Details[key] = v
	return &c
}

// New builds an error whose status is the code's first three digits.
func New(code api.ErrorCode, msg string) *Error {
	return &Error{Status: int(code) / 100, Code: code, Message: msg}
}

// Internal wraps an unexpected failure; the cause is logged, not shown.
func Internal(cause error) *Error {
	e := New(api.CodeInternal, "Internal error")
	e.Cause = cause
	return e
}

// FieldError is one validation failure, as in the spec's FieldError.
type FieldError = api.FieldError

// Validation builds a 400 listing each failing field. None is an empty
// list: the spec's errors is an array, never null.
func Validation(errs []FieldError) *Error {
	if errs == nil {
		errs = []FieldError{}
	}
	return New(api.CodeValidationFailed, "Request validation failed").With("errors", errs)
}

// The credential errors, shared by every authentication path.
func MissingCredentials() *Error { return New(api.CodeMissingCredentials, "Missing bearer token") }
func InvalidCredentials() *Error { return New(api.CodeInvalidCredentials, "Invalid API key or token") }
func ExpiredCredentials() *Error { return New(api.CodeExpiredCredentials, "Expired API key or token") }

// KeyNotFound is also what a caller gets for a key it may not see.
func KeyNotFound() *Error { return New(api.CodeKeyNotFound, "API key not found") }
