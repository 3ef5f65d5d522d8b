-- +goose Up
-- Every key records who created it (keys from before this migration: platform/migrated).
ALTER TABLE api_keys ADD COLUMN created_by_kind TEXT NOT NULL DEFAULT 'platform';
ALTER TABLE api_keys ADD COLUMN created_by_id TEXT NOT NULL DEFAULT 'migrated';
ALTER TABLE api_keys ADD COLUMN created_by_request TEXT NOT NULL DEFAULT '';
-- An expired key gives its name up (set when a new key claims the name), so names are
-- unique among keys that are neither deleted nor expired. A partial index cannot compare
-- with the clock, hence the flag.
ALTER TABLE api_keys ADD COLUMN name_released BOOLEAN NOT NULL DEFAULT FALSE;
DROP INDEX api_keys_account_name;
CREATE UNIQUE INDEX api_keys_account_name ON api_keys (account_id, name) WHERE NOT deleted AND NOT name_released;

-- +goose Down
DROP INDEX api_keys_account_name;
CREATE UNIQUE INDEX api_keys_account_name ON api_keys (account_id, name) WHERE NOT deleted;
ALTER TABLE api_keys DROP COLUMN name_released;
ALTER TABLE api_keys DROP COLUMN created_by_request;
ALTER TABLE api_keys DROP COLUMN created_by_id;
ALTER TABLE api_keys DROP COLUMN created_by_kind;
