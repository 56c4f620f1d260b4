-- Lifetime value per channel as of `as_of` (marts.channel_ltv), the growth workshop's formula over the channel's
-- paying users:  ltv = average order value x repeat purchases per month x average retention in months, where
--   average order value        = revenue / orders of the channel's paying users
--   repeat purchases per month = mean over paying users of orders / months in which they bought
--   retention in months        = mean over paying users of the months in which they bought, in the year up to as_of
-- (a "month" is a calendar month). Needs analytics_users. Variables: as_of.
CREATE TABLE IF NOT EXISTS marts.channel_ltv (
    as_of DATE, channel VARCHAR, users BIGINT, paying_users BIGINT, orders BIGINT, revenue DOUBLE,
    average_order_value DOUBLE, purchases_per_month DOUBLE, retention_months DOUBLE, ltv DOUBLE,
    ltv_per_user DOUBLE);
DELETE FROM marts.channel_ltv WHERE as_of = getvariable('as_of');
INSERT INTO marts.channel_ltv
WITH months AS (       -- per paying user: orders, and the calendar months with a purchase (all time, and last year)
    SELECT d.user_key,
           sum(d.purchases) AS orders,
           count(DISTINCT date_trunc('month', d.day)) AS buying_months,
           count(DISTINCT date_trunc('month', d.day))
               FILTER (WHERE d.day > getvariable('as_of')::DATE - INTERVAL 1 YEAR) AS buying_months_year
    FROM core.user_daily d JOIN analytics_users u USING (user_key)
    WHERE d.day <= getvariable('as_of') AND d.purchases > 0
    GROUP BY d.user_key
), per_channel AS (
    SELECT u.channel, count(*) AS users, count(m.user_key) AS paying_users, sum(m.orders)::BIGINT AS orders,
           sum(u.revenue) FILTER (WHERE m.user_key IS NOT NULL) AS revenue,
           avg(m.orders / m.buying_months) AS purchases_per_month,
           avg(m.buying_months_year) AS retention_months
    FROM analytics_users u LEFT JOIN months m USING (user_key)
    GROUP BY u.channel
)
SELECT getvariable('as_of')::DATE, channel, users, paying_users, coalesce(orders, 0), coalesce(revenue, 0),
       revenue / nullif(orders, 0) AS aov, purchases_per_month, retention_months,
       revenue / nullif(orders, 0) * purchases_per_month * retention_months AS ltv,
       revenue / nullif(orders, 0) * purchases_per_month * retention_months * paying_users / users
FROM per_channel;
