package client

import (
	"errors"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// retryDoer retries only what cannot have had an effect: a 429 (the server
// rejected it before doing anything) and a refused connection (nothing was
// sent). A timeout or reset after sending is never retried: a create or
// regenerate may have happened, and repeating it would issue another secret.
type retryDoer struct {
	c       *http.Client
	max     int
	maxWait time.Duration
}

func (d *retryDoer) Do(req *http.Request) (*http.Response, error) {
	for attempt := 0; ; attempt++ {
		res, err := d.c.Do(req)
		var wait time.Duration
		switch {
		case err != nil && errors.Is(err, syscall.ECONNREFUSED):
			wait = time.Duration(100<<attempt) * time.Millisecond
		case err == nil && res.StatusCode == http.StatusTooManyRequests:
			s, perr := strconv.Atoi(res.Header.Get("Retry-After"))
			if perr != nil || s < 0 {
				s = 1
			}
			wait = time.Duration(s) * time.Second
		default:
			return res, err
		}
		if attempt >= d.max || wait > d.maxWait || (req.Body != nil && req.GetBody == nil) {
			return res, err
		}
		if res != nil {
			res.Body.Close()
		}
		t := time.NewTimer(wait)
		select {
		case <-req.Context().Done():
			t.Stop()
			return nil, req.Context().Err()
		case <-t.C:
		}
		if req.GetBody != nil {
			body, gerr := req.GetBody()
			if gerr != nil {
				return nil, gerr
			}
			req.Body = body
		}
	}
}
