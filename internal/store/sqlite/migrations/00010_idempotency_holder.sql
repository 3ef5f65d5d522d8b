-- +goose Up
-- The store instance that holds an idempotency claim (issue 18): a claim in progress whose
-- holder has ended (its lock file, DIR/instances/<holder>.lock, is no longer held: the
-- process died) is taken over at once instead of after its lease. '' for claims written
-- before this migration: their holder is unknown, and only their lease says they died.
ALTER TABLE idempotency_records ADD COLUMN holder TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE idempotency_records DROP COLUMN holder;
