-- The raw layer of a customer's warehouse: Mixpanel events as loaded, the records we could not load,
-- and one line per loaded day. Idempotent: run before every write.
CREATE SCHEMA IF NOT EXISTS raw;

CREATE TABLE IF NOT EXISTS raw.events (
    event        VARCHAR   NOT NULL,
    distinct_id  VARCHAR   NOT NULL,
    time         TIMESTAMP NOT NULL,  -- UTC (s, ms, us, ns epochs and project-timezone times normalised)
    insert_id    VARCHAR,             -- $insert_id; events without one are never deduplicated
    device_id    VARCHAR,             -- $device_id
    user_id      VARCHAR,             -- $user_id
    properties   JSON      NOT NULL,  -- the complete properties object as exported
    event_date   DATE      NOT NULL,  -- the export day (project timezone): the Dagster day partition
    source_file  VARCHAR   NOT NULL,  -- relative to the customer's source folder
    source_line  BIGINT    NOT NULL,
    ingested_at  TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.rejected_events (
    event_date   DATE      NOT NULL,
    source_file  VARCHAR   NOT NULL,
    line_number  BIGINT    NOT NULL,
    reason       VARCHAR   NOT NULL,
    raw_text     VARCHAR   NOT NULL,
    rejected_at  TIMESTAMP NOT NULL
);

CREATE TABLE IF NOT EXISTS raw.day_loads (
    event_date            DATE      NOT NULL,
    files                 INTEGER   NOT NULL,
    lines                 BIGINT    NOT NULL,
    loaded                BIGINT    NOT NULL,
    duplicates_in_day     BIGINT    NOT NULL,
    duplicates_of_stored  BIGINT    NOT NULL,
    rejected              BIGINT    NOT NULL,
    loaded_at             TIMESTAMP NOT NULL
);
-- NULL when every file of the day was read to its end; else the file(s) that broke off, where (a truncated or
-- corrupt gzip): the records before the break are loaded, the rest is missing. Added after the first release.
ALTER TABLE raw.day_loads ADD COLUMN IF NOT EXISTS incomplete VARCHAR;
