-- Parse one export day into typed columns and sort each record into loadable or rejected.
-- Input: relation `day_lines(source_file, source_line, raw)` holding lines that are valid JSON
-- (lines that are not were rejected, or joined back, before this step).
-- Variables: tz (project timezone), timestamps ('utc' | 'project_timezone').
CREATE OR REPLACE TEMP TABLE staged AS
WITH parsed AS (
    SELECT
        source_file,
        source_line,
        raw,
        json_type(raw)                                   AS root_type,
        raw ->> '$.event'                                AS event,
        json_type(raw, '$.properties')                   AS properties_type,
        json_type(raw, '$.properties.time')              AS time_type,
        raw ->> '$.properties.time'                      AS time_text,
        raw ->> '$.properties.distinct_id'               AS distinct_id,
        raw ->> '$.properties."$insert_id"'              AS insert_id,
        raw ->> '$.properties."$device_id"'              AS device_id,
        raw ->> '$.properties."$user_id"'                AS user_id
    FROM day_lines
),
checked AS (
    SELECT
        *,
        CASE
            WHEN root_type <> 'OBJECT' THEN 'record is not a JSON object'
            WHEN event IS NULL OR trim(event) = '' THEN 'missing field: event'
            WHEN properties_type IS DISTINCT FROM 'OBJECT' THEN 'missing field: properties'
            WHEN time_type IS NULL OR time_type = 'NULL' THEN 'missing field: properties.time'
            WHEN time_type NOT IN ('UBIGINT', 'BIGINT', 'DOUBLE')
                THEN 'properties.time is not a number: ' || left(time_text, 40)
            WHEN TRY_CAST(time_text AS DOUBLE) <= 0 THEN 'properties.time is not a positive epoch: ' || time_text
            WHEN distinct_id IS NULL OR trim(distinct_id) = '' THEN 'missing field: properties.distinct_id'
        END AS reason
    FROM parsed
)
SELECT
    source_file,
    source_line,
    raw,
    reason,
    event,
    distinct_id,
    -- Mixpanel accepts seconds or milliseconds; any value >= 1e11 is milliseconds (1e11 s is the year 5138).
    CAST(round(CASE WHEN TRY_CAST(time_text AS DOUBLE) >= 1e11 THEN TRY_CAST(time_text AS DOUBLE)
                    ELSE TRY_CAST(time_text AS DOUBLE) * 1000 END) AS BIGINT) AS time_ms,
    insert_id,
    device_id,
    user_id
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
    CAST(s.raw -> '$.properties' AS JSON) AS properties,
    s.source_file,
    s.source_line,
    -- Mixpanel's dedup rule within the day: same event, distinct_id, time and $insert_id; first one wins.
    CASE WHEN s.insert_id IS NULL THEN FALSE
         ELSE row_number() OVER (PARTITION BY s.event, s.distinct_id, s.time_ms, s.insert_id
                                 ORDER BY s.source_file, s.source_line) > 1
    END AS duplicate_in_day
FROM staged s
WHERE s.reason IS NULL;
