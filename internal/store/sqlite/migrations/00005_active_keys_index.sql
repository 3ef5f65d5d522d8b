-- +goose Up
-- The active-key cap counts an account's keys that are not deleted, with their
-- expiry, on every create: this partial index holds exactly those, so the
-- count is an index-only walk that never reads a row (nor a deleted key).
CREATE INDEX api_keys_active ON api_keys (account_id, expires_at) WHERE deleted = 0;

-- +goose Down
DROP INDEX api_keys_active;
