-- The catalogue's totals: events, event names, (event, property) pairs.
SELECT
    (SELECT coalesce(sum(events), 0) FROM core.event_catalog),
    (SELECT count(*) FROM core.event_catalog),
    (SELECT count(*) FROM core.event_properties);
