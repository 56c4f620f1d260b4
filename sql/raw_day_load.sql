-- What the load of one day did (variable: day), from raw.day_loads.
SELECT files, lines, loaded, duplicates_in_day, duplicates_of_stored, rejected, incomplete
FROM raw.day_loads
WHERE event_date = getvariable('day');
