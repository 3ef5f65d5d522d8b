-- +goose Up
-- Idempotency-Key records of create and regenerate (issue 13): one per account and key.
-- body is the response sealed by the server (AES-256-GCM, the record id as associated
-- data): the secret it carries is never stored in the clear. fingerprint is SHA-256 of
-- the request. Times are the service clock's, fixed-width UTC text as everywhere here.
CREATE TABLE idempotency_records (
    account_id  TEXT NOT NULL,
    idem_key    TEXT NOT NULL,
    id          TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('in_progress', 'done')),
    status      INTEGER NOT NULL DEFAULT 0,
    body        BLOB,
    created_at  TEXT NOT NULL,
    lease_until TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    PRIMARY KEY (account_id, idem_key)
);
-- The expiry sweep.
CREATE INDEX idempotency_records_expires ON idempotency_records (expires_at);

-- +goose Down
DROP TABLE idempotency_records;
