-- +goose Up
-- Managed secret keys hold the whole catalog, which now has account:api:key:verify
-- (issue 11: the verify operation). Appended to the resource's actions (the catalog's
-- sorted order puts it last), once; a key without the resource gets it alone.
UPDATE api_keys SET permissions = jsonb_set(permissions, '{account:api:key}',
        COALESCE(permissions -> 'account:api:key', '[]'::jsonb) || '["verify"]'::jsonb)
WHERE managed AND type = 'SECRET'
    AND NOT COALESCE(permissions -> 'account:api:key' @> '["verify"]'::jsonb, FALSE);

-- +goose Down
-- The action only, as 00004's Down does for account:audit: custom keys granted it keep it.
UPDATE api_keys SET permissions = jsonb_set(permissions, '{account:api:key}', (permissions -> 'account:api:key') - 'verify')
WHERE managed AND type = 'SECRET'
    AND permissions -> 'account:api:key' @> '["verify"]'::jsonb;
