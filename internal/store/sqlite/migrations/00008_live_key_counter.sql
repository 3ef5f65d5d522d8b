-- +goose Up
-- Every create checks the account's active-key cap. Counting its active keys walks up to
-- cap entries of api_keys_active (500 by default, and the load test raises it to a million):
-- O(keys) per create. live_keys counts the account's keys that are not deleted, expired or
-- not, so active keys <= live_keys: below the cap, the account row (which create reads and
-- locks anyway) answers; only at the cap is the exact, expiry-aware count walked.
-- Triggers keep it, so that every writer of api_keys (create, delete, bootstrap, removing an
-- account, SQL by hand) keeps it right.
ALTER TABLE accounts ADD COLUMN live_keys INTEGER NOT NULL DEFAULT 0;
UPDATE accounts SET live_keys = (SELECT count(*) FROM api_keys
    WHERE api_keys.account_id = accounts.id AND api_keys.deleted = 0);

-- +goose StatementBegin
CREATE TRIGGER api_keys_live_insert AFTER INSERT ON api_keys WHEN NEW.deleted = 0
BEGIN
    UPDATE accounts SET live_keys = live_keys + 1 WHERE id = NEW.account_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER api_keys_live_delete AFTER DELETE ON api_keys WHEN OLD.deleted = 0
BEGIN
    UPDATE accounts SET live_keys = live_keys - 1 WHERE id = OLD.account_id;
END;
-- +goose StatementEnd

-- +goose StatementBegin
CREATE TRIGGER api_keys_live_update AFTER UPDATE OF deleted, account_id ON api_keys
WHEN OLD.deleted IS NOT NEW.deleted OR OLD.account_id IS NOT NEW.account_id
BEGIN
    UPDATE accounts SET live_keys = live_keys - 1 WHERE id = OLD.account_id AND OLD.deleted = 0;
    UPDATE accounts SET live_keys = live_keys + 1 WHERE id = NEW.account_id AND NEW.deleted = 0;
END;
-- +goose StatementEnd

-- +goose Down
DROP TRIGGER api_keys_live_update;
DROP TRIGGER api_keys_live_delete;
DROP TRIGGER api_keys_live_insert;
ALTER TABLE accounts DROP COLUMN live_keys;
