-- Rejected records of one day (variable: day) per reason (the text before the first colon).
SELECT regexp_replace(reason, ':.*', '') AS r, count(*)
FROM raw.rejected_events
WHERE event_date = getvariable('day')
GROUP BY r
ORDER BY r;
