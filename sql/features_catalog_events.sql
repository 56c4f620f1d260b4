-- The customer's event names, most frequent first (the candidates for per-event features).
SELECT event FROM core.event_catalog ORDER BY events DESC, event;
