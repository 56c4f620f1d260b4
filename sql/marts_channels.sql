-- Users, paying users and revenue per acquisition channel (marts.channels), and each event type per channel as
-- counts and per user (marts.channel_actions), as of `as_of`. Needs analytics_users. Replaces the as_of rows.
CREATE TABLE IF NOT EXISTS marts.channels (
    as_of DATE, channel VARCHAR, users BIGINT, share_of_users DOUBLE, paying_users BIGINT, purchases BIGINT,
    revenue DOUBLE, revenue_per_user DOUBLE, revenue_per_paying_user DOUBLE);
DELETE FROM marts.channels WHERE as_of = getvariable('as_of');
INSERT INTO marts.channels
SELECT getvariable('as_of')::DATE, channel, count(*), count(*) / sum(count(*)) OVER (),
       count(*) FILTER (WHERE purchases > 0), sum(purchases), sum(revenue), sum(revenue) / count(*),
       sum(revenue) / nullif(count(*) FILTER (WHERE purchases > 0), 0)
FROM analytics_users GROUP BY channel;

CREATE TABLE IF NOT EXISTS marts.channel_actions (
    as_of DATE, channel VARCHAR, event VARCHAR, events BIGINT, users_doing BIGINT, channel_users BIGINT,
    events_per_user DOUBLE, share_of_users_doing DOUBLE);
DELETE FROM marts.channel_actions WHERE as_of = getvariable('as_of');
INSERT INTO marts.channel_actions
WITH per_user AS (
    SELECT e.user_key, e.event, sum(e.n) AS n
    FROM core.user_daily_events e JOIN analytics_users u USING (user_key)
    WHERE e.day <= getvariable('as_of')
    GROUP BY ALL
), channel_size AS (SELECT channel, count(*) AS users FROM analytics_users GROUP BY channel)
SELECT getvariable('as_of')::DATE, u.channel, p.event, sum(p.n)::BIGINT, count(*)::BIGINT, c.users,
       sum(p.n) / c.users, count(*) / c.users
FROM per_user p JOIN analytics_users u USING (user_key) JOIN channel_size c ON c.channel = u.channel
GROUP BY u.channel, p.event, c.users;
