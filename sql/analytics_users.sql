-- The signed-up users of a customer as of `as_of`, one row each, for the growth analytics (temporary table).
-- Acquisition channel: the first channel observed for the user (the customer's property chain), else the
-- customer's default channel. Variables: as_of, channel_default.
CREATE SCHEMA IF NOT EXISTS marts;
CREATE OR REPLACE TEMP TABLE analytics_users AS
SELECT
    user_key,
    min(day) FILTER (WHERE signups > 0)                                     AS signup_day,
    min(day)                                                                AS first_day,
    max(day)                                                                AS last_day,
    coalesce(arg_min(channel, day) FILTER (WHERE channel IS NOT NULL), getvariable('channel_default')) AS channel,
    sum(events)::BIGINT                                                     AS events,
    count(*)::INTEGER                                                       AS active_days,
    sum(revenue)                                                            AS revenue,
    sum(purchases)::BIGINT                                                  AS purchases
FROM core.user_daily
WHERE day <= getvariable('as_of')
GROUP BY user_key
HAVING min(day) FILTER (WHERE signups > 0) IS NOT NULL;
