package postgres

import (
	"context"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hsrcpay/apikeys/internal/store"
)

// OpenTuned is Open with tune applied to the pool's configuration.
func OpenTuned(ctx context.Context, url string, tune func(*pgxpool.Config)) (*Store, error) {
	return open(ctx, url, tune, store.DefaultTimeout)
}
