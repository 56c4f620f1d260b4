-- What core.identities holds: ids, canonical users, identified users, ids merged into another user.
SELECT
    count(*),
    count(DISTINCT user_key),
    count(DISTINCT user_key) FILTER (WHERE is_identified),
    count(*) FILTER (WHERE id <> user_key)
FROM core.identities;
