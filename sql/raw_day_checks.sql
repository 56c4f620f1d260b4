-- Key quality of one loaded day (variable: day): duplicate dedup keys left, rows with a null/empty key.
SELECT
    (SELECT count(*) FROM (
        SELECT 1 FROM raw.events
        WHERE event_date = getvariable('day') AND insert_id IS NOT NULL
        GROUP BY event, distinct_id, time, insert_id HAVING count(*) > 1)) AS duplicate_keys,
    (SELECT count(*) FROM raw.events
     WHERE event_date = getvariable('day')
       AND (event IS NULL OR event = '' OR distinct_id IS NULL OR distinct_id = '' OR time IS NULL)) AS null_keys;
