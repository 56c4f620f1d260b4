-- Parse one export day into typed columns and sort each record into loadable or rejected.
-- Inputs: relations all_lines(row_idx, source_file, source_line, raw) (every non-blank line of the day),
-- dropped_rows(row_idx) (the lines that are not valid JSON) and repaired_lines(source_file, source_line, raw)
-- (those of them made valid again: a split record joined back, a byte-order mark removed).
-- Variables: tz (project timezone), timestamps ('utc' | 'project_timezone'), day (the export day),
-- earliest (the first plausible day).
-- No valid JSON line may make this fail: a bad field rejects its record, with the reason, and nothing else.
-- Every conversion is guarded (TRY_CAST, or done only on values already checked to be in range).
CREATE OR REPLACE TEMP TABLE staged AS
WITH day_lines AS (
    SELECT source_file, source_line, raw FROM all_lines
    WHERE row_idx NOT IN (SELECT row_idx FROM dropped_rows)
    UNION ALL
    SELECT source_file, source_line, raw FROM repaired_lines
),
parsed AS (
    SELECT
        source_file,
        source_line,
        raw,
        -- one parse per list: event, properties, time, distinct_id, $insert_id (types); values as text
        json_type(raw, ['$.event', '$.properties', '$.properties.time', '$.properties.distinct_id',
                        '$.properties."$insert_id"']) AS ty,
        json_extract_string(raw, ['$.event', '$.properties.time', '$.properties.distinct_id',
                                  '$.properties."$insert_id"', '$.properties."$device_id"',
                                  '$.properties."$user_id"']) AS v
    FROM day_lines
),
typed AS (
    SELECT
        *,
        CASE WHEN ty[3] IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN TRY_CAST(v[2] AS DOUBLE) END AS t
    FROM parsed
),
timed AS (
    -- Mixpanel sends seconds or milliseconds; other tools microseconds or nanoseconds. The magnitude tells
    -- them apart: 1e11 s, 1e14 ms and 1e17 us are all the year 5138, far beyond any plausible time.
    SELECT
        *,
        CASE WHEN abs(t) < 1e11 THEN 'seconds' WHEN abs(t) < 1e14 THEN 'milliseconds'
             WHEN abs(t) < 1e17 THEN 'microseconds' ELSE 'nanoseconds' END AS unit,
        t / CASE WHEN abs(t) < 1e11 THEN 1 WHEN abs(t) < 1e14 THEN 1e3
                 WHEN abs(t) < 1e17 THEN 1e6 ELSE 1e9 END AS secs,
        epoch(CAST(getvariable('earliest') AS TIMESTAMP)) AS lo_secs,
        -- up to the end of the day after the export day (a project-timezone day ends up to 14 h after UTC's)
        epoch(CAST(getvariable('day') AS TIMESTAMP) + INTERVAL 2 DAY) AS hi_secs
    FROM typed
),
checked AS (
    SELECT
        *,
        CASE
            -- (the root's type is needed only when there is no event: most lines skip that parse)
            WHEN ty[1] IS NULL AND json_type(raw) <> 'OBJECT' THEN 'record is not a JSON object'
            WHEN ty[1] IS NULL OR ty[1] = 'NULL' THEN 'missing field: event'
            WHEN ty[1] <> 'VARCHAR' THEN 'event is not a string: ' || left(v[1], 80)
            WHEN regexp_full_match(v[1], '[\s\pZ\x{FEFF}\x{200B}]*') THEN 'event is blank: ' || to_json(v[1])
            WHEN ty[2] IS DISTINCT FROM 'OBJECT' THEN 'missing field: properties'
            WHEN ty[3] IS NULL OR ty[3] = 'NULL' THEN 'missing field: properties.time'
            WHEN ty[3] NOT IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                THEN 'properties.time is not a number: ' || left(v[2], 40)
            WHEN t IS NULL OR NOT isfinite(t)
                THEN 'properties.time not finite: time ' || left(v[2], 40) || ' is not a finite number'
            WHEN t < 0 THEN 'properties.time negative: time ' || left(v[2], 40) || ' is negative'
            WHEN secs < lo_secs
                THEN 'properties.time out of range: time '
                     || strftime(make_timestamp(TRY_CAST(round(secs * 1e6) AS BIGINT)), '%Y-%m-%d %H:%M:%S')
                     || ' (' || left(v[2], 40) || ' ' || unit || ') is before '
                     || CAST(getvariable('earliest') AS VARCHAR)
            WHEN secs >= hi_secs
                THEN 'properties.time out of range: time '
                     || coalesce(strftime(make_timestamp(TRY_CAST(round(secs * 1e6) AS BIGINT)), '%Y-%m-%d %H:%M:%S'),
                                 'beyond the year 294000')
                     || ' (' || left(v[2], 40) || ' ' || unit || ') is after the export day '
                     || CAST(getvariable('day') AS VARCHAR) || ' + 1'
            WHEN ty[4] IS NULL OR ty[4] = 'NULL' THEN 'missing field: properties.distinct_id'
            WHEN ty[4] <> 'VARCHAR' THEN 'properties.distinct_id is not a string: ' || left(v[3], 80)
            WHEN regexp_full_match(v[3], '[\s\pZ\x{FEFF}\x{200B}]*')
                THEN 'properties.distinct_id is blank: ' || to_json(v[3])
            WHEN ty[5] NOT IN ('NULL', 'VARCHAR')
                THEN 'properties.$insert_id is not a string: ' || left(v[4], 80)
        END AS reason
    FROM timed
)
SELECT
    source_file,
    source_line,
    CASE WHEN reason IS NOT NULL THEN rtrim(raw, chr(10)) END AS raw,  -- lines keep their newline until here
    reason,
    v[1] AS event,
    v[3] AS distinct_id,
    -- milliseconds, as Mixpanel keeps them (and dedups on them); only for records whose time is in range
    CASE WHEN reason IS NULL THEN TRY_CAST(round(secs * 1000) AS BIGINT) END AS time_ms,
    v[4] AS insert_id,
    v[5] AS device_id,
    v[6] AS user_id,
    CASE WHEN reason IS NULL THEN raw -> '$.properties' END AS properties
FROM checked;

CREATE OR REPLACE TEMP TABLE staged_events AS
SELECT
    s.event,
    s.distinct_id,
    CASE WHEN getvariable('timestamps') = 'project_timezone'
         -- the epoch encodes the project's wall clock: read it as local time, then express it in UTC
         THEN timezone('UTC', timezone(getvariable('tz'), make_timestamp(s.time_ms * 1000)))
         ELSE make_timestamp(s.time_ms * 1000)
    END AS time,
    s.insert_id,
    s.device_id,
    s.user_id,
    CAST(s.properties AS JSON) AS properties,
    s.source_file,
    s.source_line,
    -- Mixpanel's dedup rule within the day: same event, distinct_id, time and $insert_id; first one wins.
    CASE WHEN s.insert_id IS NULL THEN FALSE
         ELSE row_number() OVER (PARTITION BY s.event, s.distinct_id, s.time_ms, s.insert_id
                                 ORDER BY s.source_file, s.source_line) > 1
    END AS duplicate_in_day
FROM staged s
WHERE s.reason IS NULL;
