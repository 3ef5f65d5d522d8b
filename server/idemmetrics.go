package server

import (
	"errors"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
)

// Outcomes of hsrcpay_idempotency_requests_total.
const (
	idemClaimed       = "claimed"
	idemReplayed      = "replayed"
	idemInProgress    = "in_progress"
	idemNotReplayable = "not_replayable"
	idemKeyReused     = "key_reused"
	idemRefused       = "refused"
)

// idemAnswered counts a request that found its key's record taken, by what
// answerExisting made of it (err), and returns err.
func (s *Server) idemAnswered(op string, err error) error {
	s.metrics.Idempotency.WithLabelValues(op, idemOutcome(err)).Inc()
	return err
}

func idemOutcome(err error) string {
	if err == nil {
		return idemReplayed
	}
	var e *apierr.Error
	if errors.As(err, &e) {
		switch e.Code {
		case api.CodeIdempotencyKeyReused:
			return idemKeyReused
		case api.CodeIdempotencyConflict:
			if e.Details["state"] == "in_progress" {
				return idemInProgress
			}
			return idemNotReplayable
		}
	}
	return idemRefused
}
