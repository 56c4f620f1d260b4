-- The most profitable users as of `as_of`: the top `top_n` by revenue (marts.top_users). Needs analytics_users.
CREATE TABLE IF NOT EXISTS marts.top_users (
    as_of DATE, rank INTEGER, user_key VARCHAR, channel VARCHAR, signup_day DATE, revenue DOUBLE,
    purchases BIGINT, share_of_revenue DOUBLE);
DELETE FROM marts.top_users WHERE as_of = getvariable('as_of');
INSERT INTO marts.top_users
SELECT getvariable('as_of')::DATE, rank, user_key, channel, signup_day, revenue, purchases, share
FROM (
    SELECT *, row_number() OVER (ORDER BY revenue DESC, user_key)::INTEGER AS rank,
           revenue / nullif(sum(revenue) OVER (), 0) AS share
    FROM analytics_users
)
WHERE rank <= getvariable('top_n') AND revenue > 0;
