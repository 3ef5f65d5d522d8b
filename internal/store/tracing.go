package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/audit"
)

// WithTracing makes a span for every unit of work (InTx) and every read on
// s, as a child of the caller's span: "store InTx", "store KeyBySecretHash",
// ..., with the mode, the store's kind (system: "sqlite" or "postgresql")
// and the outcome (hsrcpay.store.outcome: ok, not_found, unavailable,
// outcome_unknown, lost, conflict or error; a unit's "ok" is committed,
// anything else rolled back). No argument is recorded: ids, names, hashes
// and filters stay out of traces. A call outside any span (usage flushes,
// readiness probes) makes none. tp nil returns s unchanged.
func WithTracing(s Store, tp trace.TracerProvider, system string) Store {
	if tp == nil {
		return s
	}
	t := &tracingStore{Store: s, repos: map[apikey.Mode]Repository{}}
	tr := tp.Tracer("github.com/hsrcpay/apikeys")
	for _, m := range apikey.Modes {
		t.repos[m] = &tracingRepo{Repository: s.Repo(m), t: tr, base: []attribute.KeyValue{
			attribute.String("db.system.name", system), attribute.String("hsrcpay.mode", string(m)),
		}}
	}
	return t
}

type tracingStore struct {
	Store
	repos map[apikey.Mode]Repository
}

func (s *tracingStore) Repo(m apikey.Mode) Repository { return s.repos[m] }

func (s *tracingStore) PingWrite(ctx context.Context) error { return PingWrite(ctx, s.Store) }

type tracingRepo struct {
	Repository
	t    trace.Tracer
	base []attribute.KeyValue
}

// start begins op's span when ctx is traced; end (never nil) finishes it
// with err's outcome.
func (r *tracingRepo) start(ctx context.Context, op string) (context.Context, func(error)) {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return ctx, func(error) {}
	}
	ctx, span := r.t.Start(ctx, "store "+op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(r.base...), trace.WithAttributes(attribute.String("db.operation.name", op)))
	return ctx, func(err error) {
		o := Outcome(err)
		span.SetAttributes(attribute.String("hsrcpay.store.outcome", o))
		switch o {
		case "ok", "not_found", "conflict":
		default:
			// The kind only: a driver's message may quote a value.
			span.SetStatus(codes.Error, o)
		}
		span.End()
	}
}

// Outcome names what a store call's error means, for traces and metrics:
// ok, not_found, conflict (a duplicate, an existing account), lost (an
// idempotency claim), unavailable, outcome_unknown, or error.
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrOutcomeUnknown):
		return "outcome_unknown"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNoAccount):
		return "not_found"
	case errors.Is(err, ErrDuplicateName), errors.Is(err, ErrAccountExists), errors.Is(err, ErrDuplicateKeyID):
		return "conflict"
	case errors.Is(err, ErrIdempotencyLost):
		return "lost"
	}
	return "error"
}

func (r *tracingRepo) InTx(ctx context.Context, fn func(Tx) error) (err error) {
	ctx, end := r.start(ctx, "InTx")
	defer func() { end(err) }()
	return r.Repository.InTx(ctx, fn)
}

func (r *tracingRepo) AccountExists(ctx context.Context, id string) (_ bool, err error) {
	ctx, end := r.start(ctx, "AccountExists")
	defer func() { end(err) }()
	return r.Repository.AccountExists(ctx, id)
}

func (r *tracingRepo) GetKey(ctx context.Context, id string) (_ *apikey.Key, err error) {
	ctx, end := r.start(ctx, "GetKey")
	defer func() { end(err) }()
	return r.Repository.GetKey(ctx, id)
}

func (r *tracingRepo) KeyBySecretHash(ctx context.Context, hash []byte) (_ *apikey.Key, err error) {
	ctx, end := r.start(ctx, "KeyBySecretHash")
	defer func() { end(err) }()
	return r.Repository.KeyBySecretHash(ctx, hash)
}

func (r *tracingRepo) ListManagedKeys(ctx context.Context, accountID string) (_ []*apikey.Key, err error) {
	ctx, end := r.start(ctx, "ListManagedKeys")
	defer func() { end(err) }()
	return r.Repository.ListManagedKeys(ctx, accountID)
}

// SpendCredits is verify's one write for a key with credits: a span of its
// own, "store SpendCredits" (a refused spend is ok: it is an answer).
func (r *tracingRepo) SpendCredits(ctx context.Context, id string, cost int64, now time.Time) (_ int64, _ bool, err error) {
	ctx, end := r.start(ctx, "SpendCredits")
	defer func() { end(err) }()
	return r.Repository.SpendCredits(ctx, id, cost, now)
}

func (r *tracingRepo) ListKeys(ctx context.Context, f KeyFilter) (_ []*apikey.Key, err error) {
	ctx, end := r.start(ctx, "ListKeys")
	defer func() { end(err) }()
	return r.Repository.ListKeys(ctx, f)
}

func (r *tracingRepo) ListAuditEvents(ctx context.Context, f AuditFilter) (_ []audit.Event, err error) {
	ctx, end := r.start(ctx, "ListAuditEvents")
	defer func() { end(err) }()
	return r.Repository.ListAuditEvents(ctx, f)
}

// GetIdempotency forwards IdempotencyReader when the wrapped repository has it.
func (r *tracingRepo) GetIdempotency(ctx context.Context, accountID, key string) (_ *IdempotencyRecord, err error) {
	ir, ok := r.Repository.(IdempotencyReader)
	if !ok {
		return nil, fmt.Errorf("store: %T does not read idempotency records", r.Repository)
	}
	ctx, end := r.start(ctx, "GetIdempotency")
	defer func() { end(err) }()
	return ir.GetIdempotency(ctx, accountID, key)
}

// Systemed is a Store that names its database system for traces and
// metrics ("sqlite", "postgresql"). Both stores are.
type Systemed interface {
	System() string
}

// SystemOf is s's System, or "unknown".
func SystemOf(s Store) string {
	if sy, ok := s.(Systemed); ok {
		return sy.System()
	}
	return "unknown"
}
