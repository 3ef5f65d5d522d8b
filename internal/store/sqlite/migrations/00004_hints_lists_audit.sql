-- +goose Up
-- What may be shown of a key's secret (keys.Hint); NULL for keys issued before hints were kept.
ALTER TABLE api_keys ADD COLUMN key_hint TEXT;

-- Lists page through an account's keys in (created_at, id) order.
CREATE INDEX api_keys_account_created ON api_keys (account_id, created_at, id);

-- The head of the account's audit chain: a deleted newest event leaves the
-- chain shorter than the head says, so Verify notices.
ALTER TABLE accounts ADD COLUMN audit_seq INTEGER NOT NULL DEFAULT 0;
ALTER TABLE accounts ADD COLUMN audit_head TEXT NOT NULL DEFAULT '';

-- Every change to a key, chained per account (see internal/audit). This
-- file's database is one mode's, so the mode column only feeds the hash.
CREATE TABLE audit_events (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    seq        INTEGER NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    mode       TEXT NOT NULL,
    action     TEXT NOT NULL,
    key_id     TEXT NOT NULL,
    actor_kind TEXT NOT NULL,
    actor_id   TEXT NOT NULL,
    request_id TEXT NOT NULL,
    client_ip  TEXT NOT NULL,
    created_at TEXT NOT NULL,
    changes    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL,
    PRIMARY KEY (account_id, seq)
);
-- Newest first: the primary key serves the whole chain; these serve the
-- key_id and action filters (an action such as bootstrap may be rare, so
-- scanning the chain for it would not do).
CREATE INDEX audit_events_key ON audit_events (account_id, key_id, seq);
CREATE INDEX audit_events_action ON audit_events (account_id, action, seq);

-- Managed secret keys hold the whole catalog, which now has account:audit.
UPDATE api_keys SET permissions = json_set(permissions, '$."account:audit"', json('["read"]'))
WHERE managed = 1 AND type = 'SECRET';

-- +goose Down
UPDATE api_keys SET permissions = json_remove(permissions, '$."account:audit"')
WHERE managed = 1 AND type = 'SECRET';
DROP TABLE audit_events;
ALTER TABLE accounts DROP COLUMN audit_head;
ALTER TABLE accounts DROP COLUMN audit_seq;
DROP INDEX api_keys_account_created;
ALTER TABLE api_keys DROP COLUMN key_hint;
