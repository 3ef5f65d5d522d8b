package server

import (
	"context"
	"errors"
	"time"

	"github.com/hsrcpay/apikeys/gen/api"
	"github.com/hsrcpay/apikeys/internal/apierr"
	"github.com/hsrcpay/apikeys/internal/apikey"
	"github.com/hsrcpay/apikeys/internal/apikeys"
)

// handlers implements the generated api.StrictServerInterface: one method
// per operation in openapi.yaml, each in a file named after its operationId
// (create_api_key.go, regenerate_api_key.go) beside its tests. Requests reach
// it authenticated, authorized and validated; errors it returns are rendered
// as the envelope; the business rules are in internal/apikeys.
type handlers struct {
	svc *apikeys.Service
	// spendKey spends the budgets of a key that verify found working, as
	// the rate-limit middleware spends a caller's (Server.spendVerified).
	spendKey func(ctx context.Context, requestID string, mode apikey.Mode, k *apikey.Key) (wait time.Duration, limited bool)
	// leaked counts and logs what a leak report did (Server.recordLeaks).
	leaked func(requestID string, vs []apikeys.LeakVerdict)
}

var _ api.StrictServerInterface = (*handlers)(nil)

var (
	errNoPrincipal = apierr.Internal(errors.New("handler reached without a principal"))
	errNoBody      = apierr.Internal(errors.New("handler reached without a validated body"))
)
