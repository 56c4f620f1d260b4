-- Replace one day of core.user_daily (per canonical user: activity, sessions, revenue, outcomes and the
-- first-seen facts observed that day) and core.user_daily_events (per user: count of each event).
-- The caller wraps this in one transaction. Variables: day, signup_event, conversion_events (list),
-- goal_events (list), goal_path / goal_value (optional property condition), churn_event, revenue_path,
-- channel_paths (list). Properties are named by JSON pointers (names.json_pointer), never spliced into a path.
CREATE SCHEMA IF NOT EXISTS core;

CREATE TABLE IF NOT EXISTS core.user_daily (
    day           DATE      NOT NULL,
    user_key      VARCHAR   NOT NULL,
    events        INTEGER   NOT NULL,  -- activity events (identity-management events excluded)
    sessions      INTEGER   NOT NULL,  -- runs of events with gaps under 30 minutes
    revenue       DOUBLE    NOT NULL,  -- sum of the revenue property on conversion events
    purchases     INTEGER   NOT NULL,  -- conversion events
    goals         INTEGER   NOT NULL,  -- goal events (meeting the goal condition, if any)
    signups       INTEGER   NOT NULL,
    churn_events  INTEGER   NOT NULL,
    first_time    TIMESTAMP NOT NULL,
    last_time     TIMESTAMP NOT NULL,
    channel       VARCHAR,             -- first acquisition channel observed that day (property chain)
    platform      VARCHAR,             -- android | ios | web | other OS name
    country       VARCHAR,
    city          VARCHAR
);

CREATE TABLE IF NOT EXISTS core.user_daily_events (
    day       DATE    NOT NULL,
    user_key  VARCHAR NOT NULL,
    event     VARCHAR NOT NULL,
    n         INTEGER NOT NULL
);

CREATE OR REPLACE TEMP TABLE day_activity AS
WITH ev AS (
    SELECT
        coalesce(i.user_key, e.distinct_id) AS user_key,
        e.event,
        e.time,
        e.properties
    FROM raw.events e
    LEFT JOIN core.identities i ON i.id = e.distinct_id
    WHERE e.event_date = getvariable('day')
      AND e.event NOT IN ('$identify', '$create_alias', '$merge')
),
flagged AS (
    SELECT
        *,
        -- a new session starts at a user's first event of the day or after 30 minutes of silence
        CASE WHEN lag(time) OVER w IS NULL OR time - lag(time) OVER w > INTERVAL 30 MINUTE THEN 1 ELSE 0 END
            AS new_session,
        list_filter(
            list_transform(getvariable('channel_paths'), lambda k: properties ->> k),
            lambda x: x IS NOT NULL AND x <> '' AND x <> '$direct')[1] AS channel_value,
        CASE
            WHEN properties ->> '$."$os"' = 'Android' THEN 'android'
            WHEN properties ->> '$."$os"' IN ('iOS', 'iPadOS') THEN 'ios'
            WHEN properties ->> '$."$os"' IN ('Windows', 'Mac OS X', 'Linux', 'Chrome OS')
              OR properties ->> '$.mp_lib' = 'web' THEN 'web'
            ELSE lower(properties ->> '$."$os"')
        END AS platform_value,
        event IN (SELECT unnest(getvariable('conversion_events'))) AS is_conversion,
        event IN (SELECT unnest(getvariable('goal_events')))
            AND (getvariable('goal_path') IS NULL
                 OR properties ->> getvariable('goal_path') = getvariable('goal_value')) AS is_goal
    FROM ev
    WINDOW w AS (PARTITION BY user_key ORDER BY time)
)
SELECT
    getvariable('day')::DATE AS day,
    user_key,
    count(*)::INTEGER AS events,
    sum(new_session)::INTEGER AS sessions,
    coalesce(sum(TRY_CAST(properties ->> getvariable('revenue_path') AS DOUBLE))
             FILTER (WHERE is_conversion), 0) AS revenue,
    count(*) FILTER (WHERE is_conversion)::INTEGER AS purchases,
    count(*) FILTER (WHERE is_goal)::INTEGER AS goals,
    count(*) FILTER (WHERE event = getvariable('signup_event'))::INTEGER AS signups,
    count(*) FILTER (WHERE event = getvariable('churn_event'))::INTEGER AS churn_events,
    min(time) AS first_time,
    max(time) AS last_time,
    arg_min(channel_value, time) FILTER (WHERE channel_value IS NOT NULL) AS channel,
    arg_min(platform_value, time) FILTER (WHERE platform_value IS NOT NULL) AS platform,
    arg_min(properties ->> '$.mp_country_code', time) FILTER (WHERE properties ->> '$.mp_country_code' IS NOT NULL) AS country,
    arg_min(properties ->> '$."$city"', time) FILTER (WHERE properties ->> '$."$city"' IS NOT NULL) AS city
FROM flagged
GROUP BY user_key;

DELETE FROM core.user_daily WHERE day = getvariable('day');
DELETE FROM core.user_daily_events WHERE day = getvariable('day');

INSERT INTO core.user_daily SELECT * FROM day_activity ORDER BY user_key;

INSERT INTO core.user_daily_events
SELECT getvariable('day')::DATE, coalesce(i.user_key, e.distinct_id) AS user_key, e.event, count(*)::INTEGER
FROM raw.events e
LEFT JOIN core.identities i ON i.id = e.distinct_id
WHERE e.event_date = getvariable('day') AND e.event NOT IN ('$identify', '$create_alias', '$merge')
GROUP BY ALL
ORDER BY user_key, e.event;

DROP TABLE day_activity;
