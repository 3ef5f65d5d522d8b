-- +goose Up
-- The client addresses a key works from (issue 22): its canonical CIDR prefixes
-- (apikey.ParseNetworks), comma-separated; '' for any address, which every key
-- written before this migration keeps.
ALTER TABLE api_keys ADD COLUMN allowed_networks TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE api_keys DROP COLUMN allowed_networks;
