-- +goose Up
-- live_keys (00008) is kept at COMMIT instead of at each write of a key (issue 19). The
-- counter's UPDATE locks the account's row, which every write to the account waits for: run
-- at the INSERT, it held that row through the rest of the unit (the key's indexes, the audit
-- event, COMMIT), so one account's creates ran one after another that long each. Deferred,
-- it runs after the unit's last statement, which locks the row anyway (the audit chain's
-- head). Inside a unit, live_keys leaves out the unit's own writes of keys until it commits:
-- the store's cap checks count exactly after those (see KeyCapReached).
DROP TRIGGER api_keys_live_update ON api_keys;
DROP TRIGGER api_keys_live_delete ON api_keys;
DROP TRIGGER api_keys_live_insert ON api_keys;
CREATE CONSTRAINT TRIGGER api_keys_live_insert AFTER INSERT ON api_keys
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NOT NEW.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE CONSTRAINT TRIGGER api_keys_live_delete AFTER DELETE ON api_keys
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (NOT OLD.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE CONSTRAINT TRIGGER api_keys_live_update AFTER UPDATE OF deleted, account_id ON api_keys
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.deleted IS DISTINCT FROM NEW.deleted OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION api_keys_live_count();
-- The foreign key's check of a key's account, for the same reason: it locks the account's
-- row (FOR KEY SHARE) at the INSERT, and every later change of the row (each write to the
-- account moves its audit head) then carries that lock over to its new version, each
-- inserting unit walking the row's versions to lock them all. At COMMIT the unit holds the
-- row already.
ALTER TABLE api_keys ALTER CONSTRAINT api_keys_account_fkey DEFERRABLE INITIALLY DEFERRED;

-- +goose Down
ALTER TABLE api_keys ALTER CONSTRAINT api_keys_account_fkey NOT DEFERRABLE INITIALLY IMMEDIATE;
DROP TRIGGER api_keys_live_update ON api_keys;
DROP TRIGGER api_keys_live_delete ON api_keys;
DROP TRIGGER api_keys_live_insert ON api_keys;
CREATE TRIGGER api_keys_live_insert AFTER INSERT ON api_keys
    FOR EACH ROW WHEN (NOT NEW.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE TRIGGER api_keys_live_delete AFTER DELETE ON api_keys
    FOR EACH ROW WHEN (NOT OLD.deleted) EXECUTE FUNCTION api_keys_live_count();
CREATE TRIGGER api_keys_live_update AFTER UPDATE OF deleted, account_id ON api_keys
    FOR EACH ROW WHEN (OLD.deleted IS DISTINCT FROM NEW.deleted OR OLD.account_id IS DISTINCT FROM NEW.account_id)
    EXECUTE FUNCTION api_keys_live_count();
