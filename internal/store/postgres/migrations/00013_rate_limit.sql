-- +goose Up
-- A key's own request budget (issue 22): rate_limit requests per rate_window_seconds,
-- replacing its mode's default; 0 and 0 for none, which every key written before this
-- migration keeps.
ALTER TABLE api_keys ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN rate_window_seconds INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN rate_window_seconds;
ALTER TABLE api_keys DROP COLUMN rate_limit;
