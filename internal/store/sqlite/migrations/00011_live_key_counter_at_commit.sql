-- +goose Up
-- PostgreSQL's 00011 keeps live_keys at COMMIT (its writers to one account wait for the
-- account's row). SQLite has one writer at a time, so its triggers stay as 00008 made them;
-- this keeps the two stores' versions in step (migrate --to counts one list).
SELECT 1;

-- +goose Down
SELECT 1;
