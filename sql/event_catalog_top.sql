-- The most frequent events of the catalogue (variable: top) with their number of properties.
SELECT c.event, c.events, c.distinct_ids, c.first_seen::DATE, c.last_seen::DATE,
       (SELECT count(*) FROM core.event_properties p WHERE p.event = c.event)
FROM core.event_catalog c
ORDER BY c.events DESC, c.event
LIMIT getvariable('top');
