-- +goose Up
-- One index of an account's keys instead of two (issue 19): every create wrote an entry into
-- both api_keys_account_created (00004: ListKeys pages in (created_at, id) order) and
-- api_keys_active (00005: the active-key cap's count). Led by (account_id, deleted), this one
-- pages each ListKeys shape (they all ask for one value of deleted) along its order, and
-- holds expires_at, so that the cap's count of an account's keys not deleted stays an
-- index-only walk; ListManagedKeys and removing an account use its prefix.
-- TestStatementPlans holds every query to its index.
CREATE INDEX api_keys_account_keys ON api_keys (account_id, deleted, created_at, id, expires_at);
DROP INDEX api_keys_account_created;
DROP INDEX api_keys_active;

-- +goose Down
CREATE INDEX api_keys_account_created ON api_keys (account_id, created_at, id);
CREATE INDEX api_keys_active ON api_keys (account_id, expires_at) WHERE deleted = 0;
DROP INDEX api_keys_account_keys;
