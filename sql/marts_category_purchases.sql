-- Purchases by category (the customer's category property on conversion events, e.g. cuisine) and channel, as
-- of `as_of` (marts.category_purchases). Variables: as_of, category_path and revenue_path (JSON pointers,
-- names.json_pointer; revenue_path NULL without a revenue property), conversion_events. Needs analytics_users.
-- Replaces the as_of rows.
CREATE TABLE IF NOT EXISTS marts.category_purchases (
    as_of DATE, category VARCHAR, channel VARCHAR, purchases BIGINT, buyers BIGINT, revenue DOUBLE);
DELETE FROM marts.category_purchases WHERE as_of = getvariable('as_of');
INSERT INTO marts.category_purchases
SELECT getvariable('as_of')::DATE,
       coalesce(e.properties ->> getvariable('category_path'), '(none)') AS category,
       u.channel, count(*), count(DISTINCT u.user_key),
       coalesce(sum(TRY_CAST(e.properties ->> getvariable('revenue_path') AS DOUBLE)), 0)
FROM raw.events e
JOIN core.identities i ON i.id = e.distinct_id
JOIN analytics_users u ON u.user_key = i.user_key
WHERE e.event_date <= getvariable('as_of')
  AND e.event IN (SELECT unnest(getvariable('conversion_events')))
GROUP BY ALL;
