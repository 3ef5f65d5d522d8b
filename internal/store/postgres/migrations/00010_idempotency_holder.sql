-- +goose Up
-- The store instance (replica) that holds an idempotency claim (issue 18). Replicas share
-- the database, so a holder's death shows only as a lease it stopped renewing; holder says
-- which replica a claim in progress belongs to. '' for claims written before this migration.
ALTER TABLE idempotency_records ADD COLUMN holder TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE idempotency_records DROP COLUMN holder;
