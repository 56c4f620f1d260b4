-- The event metadata modelling starts from: each event with counts and dates, and its properties with
-- observed JSON types and fill rates. Event-level figures are exact; property figures come from up to
-- about 20,000 rows per event, picked by a hash so that the catalogue is the same on every rebuild.
CREATE SCHEMA IF NOT EXISTS core;

CREATE OR REPLACE TABLE core.event_catalog AS
SELECT
    event,
    count(*)                                   AS events,
    count(DISTINCT distinct_id)                AS distinct_ids,
    min(time)                                  AS first_seen,
    max(time)                                  AS last_seen,
    count(DISTINCT event_date)                 AS days_seen,
    count(*) / sum(count(*)) OVER ()           AS share_of_events
FROM raw.events
GROUP BY event
ORDER BY events DESC, event;

CREATE OR REPLACE TABLE core.event_properties AS
WITH sampled AS (
    SELECT e.event, e.properties, c.events
    FROM raw.events e JOIN core.event_catalog c USING (event)
    WHERE hash(e.distinct_id, e.time, e.source_line) % greatest(1, c.events // 20000) = 0
),
sample_sizes AS (SELECT event, count(*) AS sampled_rows FROM sampled GROUP BY event),
keyed AS (
    SELECT s.event, k.key AS property, k.value AS value
    FROM sampled s, json_each(s.properties) AS k
)
SELECT
    k.event,
    k.property,
    list(DISTINCT json_type(k.value) ORDER BY json_type(k.value)) FILTER (WHERE json_type(k.value) <> 'NULL')
                                                               AS observed_types,
    count(*) FILTER (WHERE json_type(k.value) <> 'NULL') / any_value(z.sampled_rows) AS fill_rate,
    approx_count_distinct(k.value::VARCHAR)                    AS distinct_values,
    any_value(k.value::VARCHAR) FILTER (WHERE json_type(k.value) <> 'NULL') AS example_value,
    any_value(z.sampled_rows)                                  AS sampled_rows
FROM keyed k JOIN sample_sizes z USING (event)
GROUP BY k.event, k.property
ORDER BY k.event, fill_rate DESC, k.property;
