-- Per canonical user and day up to a day (variable: until), the events carrying each value of the customer's
-- category property (variable: category_path, its JSON pointer): the favourite category is the one most events
-- carry.
SELECT coalesce(i.user_key, e.distinct_id) AS user_key, e.event_date AS day,
       e.properties ->> getvariable('category_path') AS value, count(*)::INTEGER AS n
FROM raw.events e LEFT JOIN core.identities i ON i.id = e.distinct_id
WHERE e.event_date <= getvariable('until')
  AND e.properties ->> getvariable('category_path') IS NOT NULL
GROUP BY ALL;
