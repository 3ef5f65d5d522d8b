-- +goose Up
-- SQLite's 00015 merges two indexes of an account's keys into one. PostgreSQL keeps its
-- own; this keeps the two stores' versions in step (migrate --to counts one list).
SELECT 1;

-- +goose Down
SELECT 1;
