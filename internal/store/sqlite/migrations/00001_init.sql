-- +goose Up
CREATE TABLE accounts (
    id         TEXT PRIMARY KEY,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    account_id   TEXT NOT NULL REFERENCES accounts(id),
    name         TEXT NOT NULL,
    type         TEXT NOT NULL CHECK (type IN ('SECRET', 'PUBLISHABLE')),
    secret_hash  BLOB NOT NULL UNIQUE,
    permissions  TEXT NOT NULL,
    metadata     TEXT NOT NULL,
    status       TEXT NOT NULL,
    managed      INTEGER NOT NULL,
    deleted      INTEGER NOT NULL,
    last_used_at TEXT,
    last_used_ip TEXT,
    expires_at   TEXT,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

-- Names are unique among an account's live (not deleted) keys.
CREATE UNIQUE INDEX api_keys_account_name ON api_keys (account_id, name) WHERE deleted = 0;

-- +goose Down
DROP TABLE api_keys;
DROP TABLE accounts;
