-- +goose Up
-- Every create checks the account's active-key cap. Counting its active keys walks up to
-- cap entries of api_keys_active (500 by default, and the load test raises it to a million):
-- O(keys) per create. live_keys counts the account's keys that are not deleted, expired or
-- not, so active keys <= live_keys: below the cap, the account row (which create locks
-- anyway) answers; only at the cap is the exact, expiry-aware count walked.
-- Triggers keep it, so that every writer of api_keys (create, delete, bootstrap, removing an
-- account, SQL by hand) keeps it right. The queries name their schema and the servers'
-- search_path does not, so the function keeps the migration's (this schema).
ALTER TABLE accounts ADD COLUMN live_keys BIGINT NOT NULL DEFAULT 0;
UPDATE accounts SET live_keys = (SELECT count(*) FROM api_keys
    WHERE api_keys.account_id = accounts.id AND NOT api_keys.deleted);

-- +goose StatementBegin
CREATE FUNCTION api_keys_live_count() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        IF NOT OLD.deleted THEN
            UPDATE accounts SET live_keys = live_keys - 1 WHERE id = OLD.account_id;
        END IF;
    END IF;
    IF TG_OP <> 'DELETE' THEN
        IF NOT NEW.deleted THEN
            UPDATE accounts SET live_keys = live_keys + 1 WHERE id = NEW.account_id;
        END IF;
    END IF;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER api_keys_live_insert AFTER INSERT ON api_keys
    FOR EACH ROW WHEN (NOT NEW.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE TRIGGER api_keys_live_delete AFTER DELETE ON api_keys
    FOR EACH ROW WHEN (NOT OLD.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE TRIGGER api_keys_live_update AFTER UPDATE OF deleted, account_id ON api_keys
    FOR EACH ROW WHEN (OLD.deleted IS DISTINCT FROM NEW.deleted OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION api_keys_live_count();

-- +goose Down
DROP TRIGGER api_keys_live_update ON api_keys;
DROP TRIGGER api_keys_live_delete ON api_keys;
DROP TRIGGER api_keys_live_insert ON api_keys;
DROP FUNCTION api_keys_live_count();
ALTER TABLE accounts DROP COLUMN live_keys;
