-- Replace one day partition of raw.events in a single transaction (the caller wraps it in BEGIN/COMMIT):
-- a crash leaves the old day or the new one, never half of it.
-- Variables: day, ingested_at, files, lines, incomplete. Inputs: temp tables staged, staged_events; relation
-- python_rejects.
DELETE FROM raw.events WHERE event_date = getvariable('day');
DELETE FROM raw.rejected_events WHERE event_date = getvariable('day');
DELETE FROM raw.day_loads WHERE event_date = getvariable('day');

-- Mixpanel's dedup rule against rows already stored for other days. A duplicate has the same time, so
-- only stored rows inside this day's time range can match; the range keeps the scan to a few row groups.
CREATE OR REPLACE TEMP TABLE day_events AS
WITH bounds AS (SELECT min(time) AS lo, max(time) AS hi FROM staged_events),
stored AS (
    SELECT e.event, e.distinct_id, e.time, e.insert_id
    FROM raw.events e, bounds b
    WHERE e.insert_id IS NOT NULL AND e.time BETWEEN b.lo AND b.hi
)
SELECT
    se.*,
    (NOT se.duplicate_in_day AND st.insert_id IS NOT NULL) AS duplicate_of_stored
FROM staged_events se
LEFT JOIN (SELECT DISTINCT * FROM stored) st
  ON se.insert_id = st.insert_id AND se.event = st.event
 AND se.distinct_id = st.distinct_id AND se.time = st.time;

INSERT INTO raw.events
SELECT event, distinct_id, time, insert_id, device_id, user_id, properties,
       getvariable('day'), source_file, source_line, getvariable('ingested_at')
FROM day_events
WHERE NOT duplicate_in_day AND NOT duplicate_of_stored
ORDER BY time, source_file, source_line;

INSERT INTO raw.rejected_events
SELECT getvariable('day'), source_file, line_number, reason, raw_text, getvariable('ingested_at')
FROM (
    SELECT source_file, source_line AS line_number, reason, raw AS raw_text FROM staged WHERE reason IS NOT NULL
    UNION ALL
    SELECT source_file, line_number, reason, raw_text FROM python_rejects
)
ORDER BY source_file, line_number;

INSERT INTO raw.day_loads (event_date, files, lines, loaded, duplicates_in_day, duplicates_of_stored, rejected,
                           loaded_at, incomplete)
SELECT
    getvariable('day'),
    getvariable('files'),
    getvariable('lines'),
    (SELECT count(*) FROM day_events WHERE NOT duplicate_in_day AND NOT duplicate_of_stored),
    (SELECT count(*) FROM day_events WHERE duplicate_in_day),
    (SELECT count(*) FROM day_events WHERE duplicate_of_stored),
    (SELECT count(*) FROM staged WHERE reason IS NOT NULL) + (SELECT count(*) FROM python_rejects),
    getvariable('ingested_at'),
    CAST(getvariable('incomplete') AS VARCHAR);
