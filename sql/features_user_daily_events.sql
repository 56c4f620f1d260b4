-- core.user_daily_events of the top events (variable: top_events) up to a day (variable: until).
SELECT day, user_key, event, n
FROM core.user_daily_events
WHERE day <= getvariable('until') AND list_contains(getvariable('top_events'), event);
