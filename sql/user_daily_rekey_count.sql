-- The ids of core.user_daily that the latest identities merged into another user (user_daily_rekey.sql moves them).
SELECT count(DISTINCT d.user_key)
FROM core.user_daily d JOIN core.identities i ON i.id = d.user_key
WHERE i.id <> i.user_key;
