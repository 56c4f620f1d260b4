-- The temporary tables of one day's load (raw_stage_events.sql, raw_replace_day.sql), dropped after it.
DROP TABLE IF EXISTS staged;
DROP TABLE IF EXISTS staged_events;
DROP TABLE IF EXISTS day_events;
