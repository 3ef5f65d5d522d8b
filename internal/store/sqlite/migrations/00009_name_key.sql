-- +goose Up
-- Names are unique among live keys by name_key (namekey.Key: white space collapsed, the
-- TS #39 confusable skeleton, marks and invisible characters dropped), so that a name
-- that looks like another live key's is a duplicate. SQL cannot compute the key: the
-- store fills it in Go when it opens the file (rows whose name_key IS NULL, the
-- partial index below finds them), and on every write. The exact-name index stays:
-- it is implied once every row has its key, and it protects names written by an
-- older binary (NULL key) until the next open fills them in.
ALTER TABLE api_keys ADD COLUMN name_key TEXT;
CREATE UNIQUE INDEX api_keys_account_name_key ON api_keys (account_id, name_key) WHERE deleted = 0 AND name_released = 0;
CREATE INDEX api_keys_name_key_missing ON api_keys (id) WHERE name_key IS NULL;

-- +goose Down
DROP INDEX api_keys_name_key_missing;
DROP INDEX api_keys_account_name_key;
ALTER TABLE api_keys DROP COLUMN name_key;
