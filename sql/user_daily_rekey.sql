-- After identities are rebuilt: move earlier days of core.user_daily(_events) from ids that now belong to
-- another user (an anonymous device that signed up later) onto that user, merging rows of the same day,
-- so that a day built before a merge reads the same as a day built after it. Sessions of a merged day add up.
-- The caller wraps this in one transaction. Does nothing before user_daily exists.
CREATE TEMP TABLE rekey AS
SELECT i.id AS old_key, i.user_key AS new_key
FROM core.identities i
WHERE i.id <> i.user_key AND i.id IN (SELECT DISTINCT user_key FROM core.user_daily);

CREATE TEMP TABLE touched AS
SELECT old_key AS k FROM rekey UNION SELECT new_key FROM rekey;

CREATE TEMP TABLE merged_daily AS
SELECT d.day, coalesce(r.new_key, d.user_key) AS user_key,
       sum(d.events)::INTEGER, sum(d.sessions)::INTEGER, sum(d.revenue), sum(d.purchases)::INTEGER,
       sum(d.goals)::INTEGER, sum(d.signups)::INTEGER, sum(d.churn_events)::INTEGER,
       min(d.first_time), max(d.last_time),
       arg_min(d.channel, d.first_time) FILTER (WHERE d.channel IS NOT NULL),
       arg_min(d.platform, d.first_time) FILTER (WHERE d.platform IS NOT NULL),
       arg_min(d.country, d.first_time) FILTER (WHERE d.country IS NOT NULL),
       arg_min(d.city, d.first_time) FILTER (WHERE d.city IS NOT NULL)
FROM core.user_daily d LEFT JOIN rekey r ON r.old_key = d.user_key
WHERE d.user_key IN (SELECT k FROM touched)
GROUP BY 1, 2;

CREATE TEMP TABLE merged_events AS
SELECT e.day, coalesce(r.new_key, e.user_key) AS user_key, e.event, sum(e.n)::INTEGER AS n
FROM core.user_daily_events e LEFT JOIN rekey r ON r.old_key = e.user_key
WHERE e.user_key IN (SELECT k FROM touched)
GROUP BY 1, 2, 3;

DELETE FROM core.user_daily WHERE user_key IN (SELECT k FROM touched);
DELETE FROM core.user_daily_events WHERE user_key IN (SELECT k FROM touched);
INSERT INTO core.user_daily SELECT * FROM merged_daily;
INSERT INTO core.user_daily_events SELECT * FROM merged_events;

DROP TABLE rekey; DROP TABLE touched; DROP TABLE merged_daily; DROP TABLE merged_events;
