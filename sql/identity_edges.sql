-- The links between a customer's identifiers, for identity resolution (growth_pipeline/lib/identities.py).
-- kind: 'seen'     an identifier used as distinct_id (a = distinct_id)
--       'device'   simplified ID merge: an event carrying $device_id links "$device:<id>" to its distinct_id,
--                  and with $user_id the device merges into that user (a = device node, b = user id)
--       'identify' original API $identify: $anon_distinct_id -> $identified_id
--       'alias'    original API $create_alias: alias <-> distinct_id
--       'merge'    original API $merge: every id of $distinct_ids into one user
WITH ev AS (
    SELECT event, distinct_id, device_id, user_id, time, properties FROM raw.events
)
SELECT 'seen' AS kind, distinct_id AS a, NULL AS b, min(time) AS first_time, max(time) AS last_time,
       bool_or(user_id IS NOT NULL AND user_id = distinct_id) AS identified
FROM ev GROUP BY distinct_id
UNION ALL
SELECT 'device', '$device:' || device_id, user_id, min(time), max(time), TRUE
FROM ev WHERE device_id IS NOT NULL AND user_id IS NOT NULL GROUP BY device_id, user_id
UNION ALL
SELECT 'device', '$device:' || device_id, distinct_id, min(time), max(time), FALSE
FROM ev WHERE device_id IS NOT NULL AND user_id IS NULL AND distinct_id <> '$device:' || device_id
GROUP BY device_id, distinct_id
UNION ALL
SELECT 'identify', properties ->> '$."$anon_distinct_id"', properties ->> '$."$identified_id"', min(time), max(time), TRUE
FROM ev WHERE event = '$identify' AND properties ->> '$."$anon_distinct_id"' IS NOT NULL
  AND properties ->> '$."$identified_id"' IS NOT NULL
GROUP BY 2, 3
UNION ALL
SELECT 'alias', properties ->> '$.alias', distinct_id, min(time), max(time), TRUE
FROM ev WHERE event = '$create_alias' AND properties ->> '$.alias' IS NOT NULL
GROUP BY 2, 3
UNION ALL
SELECT 'merge', m.value ->> '$', ev.distinct_id, min(ev.time), max(ev.time), TRUE
FROM ev, json_each(ev.properties -> '$."$distinct_ids"') AS m
WHERE ev.event = '$merge'
GROUP BY 2, 3
ORDER BY first_time, kind, a, b;
