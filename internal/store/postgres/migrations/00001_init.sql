-- +goose Up
-- Run once per mode schema (hsrcpay_live, hsrcpay_test) with search_path set
-- to that schema, so every name below is created inside it.
CREATE TABLE accounts (
    id         TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    CONSTRAINT accounts_pkey PRIMARY KEY (id)
);

CREATE TABLE api_keys (
    id           TEXT NOT NULL,
    account_id   TEXT NOT NULL,
    name         TEXT NOT NULL,
    type         TEXT NOT NULL,
    secret_hash  BYTEA NOT NULL,
    permissions  JSONB NOT NULL,
    metadata     JSONB NOT NULL,
    status       TEXT NOT NULL,
    managed      BOOLEAN NOT NULL,
    deleted      BOOLEAN NOT NULL,
    last_used_at TIMESTAMPTZ,
    last_used_ip TEXT,
    expires_at   TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL,
    -- The store maps unique violations to errors by these constraint names.
    CONSTRAINT api_keys_pkey PRIMARY KEY (id),
    CONSTRAINT api_keys_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT api_keys_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id),
    CONSTRAINT api_keys_type_check CHECK (type IN ('SECRET', 'PUBLISHABLE'))
);

-- Names are unique among an account's live (not deleted) keys.
CREATE UNIQUE INDEX api_keys_account_name ON api_keys (account_id, name) WHERE NOT deleted;

-- +goose Down
DROP TABLE api_keys;
DROP TABLE accounts;
