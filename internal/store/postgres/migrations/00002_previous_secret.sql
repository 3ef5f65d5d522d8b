-- +goose Up
-- Zero-downtime rotation: the replaced secret keeps working until prev_secret_expires_at.
ALTER TABLE api_keys ADD COLUMN prev_secret_hash BYTEA;
ALTER TABLE api_keys ADD COLUMN prev_secret_expires_at TIMESTAMPTZ;
CREATE UNIQUE INDEX api_keys_prev_secret_hash ON api_keys (prev_secret_hash) WHERE prev_secret_hash IS NOT NULL;

-- +goose Down
DROP INDEX api_keys_prev_secret_hash;
ALTER TABLE api_keys DROP COLUMN prev_secret_expires_at;
ALTER TABLE api_keys DROP COLUMN prev_secret_hash;
