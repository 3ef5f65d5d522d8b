-- +goose Up
-- Managed secret keys hold the whole catalog, which now has account:api:key:verify
-- (issue 11: the verify operation). Appended to the resource's actions (the catalog's
-- sorted order puts it last), once; a key without the resource gets it alone.
UPDATE api_keys SET permissions = CASE
        WHEN json_type(permissions, '$."account:api:key"') = 'array'
            THEN json_insert(permissions, '$."account:api:key"[#]', 'verify')
        ELSE json_set(permissions, '$."account:api:key"', json('["verify"]'))
    END
WHERE managed = 1 AND type = 'SECRET'
    AND NOT EXISTS (SELECT 1 FROM json_each(api_keys.permissions, '$."account:api:key"') WHERE value = 'verify');

-- +goose Down
-- The action only, as 00004's Down does for account:audit: custom keys granted it keep it.
UPDATE api_keys SET permissions = json_set(permissions, '$."account:api:key"',
        json((SELECT json_group_array(value) FROM json_each(api_keys.permissions, '$."account:api:key"') WHERE value <> 'verify')))
WHERE managed = 1 AND type = 'SECRET'
    AND EXISTS (SELECT 1 FROM json_each(api_keys.permissions, '$."account:api:key"') WHERE value = 'verify');
