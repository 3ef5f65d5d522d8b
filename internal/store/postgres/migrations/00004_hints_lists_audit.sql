-- +goose Up
-- What may be shown of a key's secret (keys.Hint); NULL for keys issued before hints were kept.
ALTER TABLE api_keys ADD COLUMN key_hint TEXT;

-- Lists page through an account's keys in (created_at, id) order, ids compared
-- bytewise (COLLATE "C", as the queries do) so that both stores order alike.
CREATE INDEX api_keys_account_created ON api_keys (account_id, created_at, id COLLATE "C");

-- The head of the account's audit chain: a deleted newest event leaves the
-- chain shorter than the head says, so Verify notices.
ALTER TABLE accounts ADD COLUMN audit_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN audit_head TEXT NOT NULL DEFAULT '';

-- Every change to a key, chained per account (see internal/audit). This
-- schema is one mode's, so the mode column only feeds the hash.
CREATE TABLE audit_events (
    account_id TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    id         TEXT NOT NULL,
    mode       TEXT NOT NULL,
    action     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_ip  TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    changes    JSONB NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    CONSTRAINT audit_events_pkey PRIMARY KEY (account_id, seq),
    CONSTRAINT audit_events_id_key UNIQUE (id),
    CONSTRAINT audit_events_account_fkey FOREIGN KEY (account_id) REFERENCES accounts (id)
);
-- Newest first: the primary key serves the whole chain; these serve the
-- key_id and action filters (an action such as bootstrap may be rare, so
-- scanning the chain for it would not do).
CREATE INDEX audit_events_key ON audit_events (account_id, key_id, seq);
CREATE INDEX audit_events_action ON audit_events (account_id, action, seq);

-- Managed secret keys hold the whole catalog, which now has account:audit.
UPDATE api_keys SET permissions = permissions || '{"account:audit": ["read"]}'::jsonb
WHERE managed AND type = 'SECRET';

-- +goose Down
UPDATE api_keys SET permissions = permissions - 'account:audit'
WHERE managed AND type = 'SECRET';
DROP TABLE audit_events;
ALTER TABLE accounts DROP COLUMN audit_head;
ALTER TABLE accounts DROP COLUMN audit_seq;
DROP INDEX api_keys_account_created;
ALTER TABLE api_keys DROP COLUMN key_hint;
