-- The first rejected records of one day (variables: day, n), for a person to look at.
SELECT source_file, line_number, reason
FROM raw.rejected_events
WHERE event_date = getvariable('day')
ORDER BY source_file, line_number
LIMIT getvariable('n');
