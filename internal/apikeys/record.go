package apikeys

import (
	"context"

	"github.com/hsrcpay/apikeys/internal/store"
)

// Recorder is called by Create and Regenerate inside their unit of work,
// once the key change and its audit event are written and before the unit
// commits; an error from it rolls the whole unit back.
//
// Why a callback and not a wrapper around the use case: the server keeps an
// Idempotency-Key's answer (the response body, secret included, encrypted)
// and the answer must commit in the SAME unit as the change. Otherwise a
// crash between two units could leave a key issued with no record of it (a
// retry would then issue a second one) or a record of a change that rolled
// back. The body is rendered in the server (HTTP lives there), so the use
// case hands the issued key to the server's renderer, in its unit, through
// this hook; the use case knows nothing of HTTP or idempotency.
type Recorder func(ctx context.Context, tx store.Tx, issued *Issued) error

// UnitOption adjusts one call of a use case that issues a secret.
type UnitOption func(*unitOptions)

type unitOptions struct {
	record Recorder
}

// WithRecord has the use case call fn inside its unit of work (see Recorder).
func WithRecord(fn Recorder) UnitOption { return func(o *unitOptions) { o.record = fn } }

func applyUnitOptions(opts []UnitOption) unitOptions {
	var o unitOptions
	for _, f := range opts {
		if f != nil {
			f(&o)
		}
	}
	return o
}

// recordIssued runs the caller's Recorder, if any, inside the unit.
func (o unitOptions) recordIssued(ctx context.Context, tx store.Tx, issued *Issued) error {
	if o.record == nil {
		return nil
	}
	return o.record(ctx, tx, issued)
}
