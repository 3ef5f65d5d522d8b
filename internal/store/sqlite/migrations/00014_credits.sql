-- +goose Up
-- A key's usage credits (issue 22): credits_remaining NULL for a key without credits
-- (every key written before this migration), else what is left as of credits_refilled_at
-- (unix seconds: when it was last set or refilled). A refill (amount > 0) puts it back to
-- credits_refill_amount at each daily or monthly (day 1..31) boundary passed since; the
-- spend applies a due refill and spends in one conditional UPDATE (SpendCredits).
ALTER TABLE api_keys ADD COLUMN credits_remaining INTEGER;
ALTER TABLE api_keys ADD COLUMN credits_refill_amount INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN credits_refill_interval TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN credits_refill_day INTEGER NOT NULL DEFAULT 0;
ALTER TABLE api_keys ADD COLUMN credits_refilled_at INTEGER NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE api_keys DROP COLUMN credits_refilled_at;
ALTER TABLE api_keys DROP COLUMN credits_refill_day;
ALTER TABLE api_keys DROP COLUMN credits_refill_interval;
ALTER TABLE api_keys DROP COLUMN credits_refill_amount;
ALTER TABLE api_keys DROP COLUMN credits_remaining;
