-- Campaign lift as of `as_of` (marts.campaign_lift): users who signed up through campaign A (channels
-- `campaign_a`) against campaign B (`campaign_b`, the baseline), among sign-ups whose first `response_days` days
-- are complete. For each day d = 0..response_days after sign-up: the cumulative response rate (share of the
-- campaign's users whose first purchase came within d days: the cumulative-gains curve) and the lift of A over B
-- (rate A / rate B). Variables: as_of, campaign_a, campaign_b (lists), response_days.
CREATE TABLE IF NOT EXISTS marts.campaign_lift (
    as_of DATE, campaign_a VARCHAR, campaign_b VARCHAR, day_since_signup INTEGER, users_a BIGINT,
    responders_a BIGINT, rate_a DOUBLE, users_b BIGINT, responders_b BIGINT, rate_b DOUBLE, lift DOUBLE);
DELETE FROM marts.campaign_lift WHERE as_of = getvariable('as_of');
INSERT INTO marts.campaign_lift
WITH members AS (
    SELECT user_key, signup_day,
           CASE WHEN list_contains(getvariable('campaign_a'), channel) THEN 'a'
                WHEN list_contains(getvariable('campaign_b'), channel) THEN 'b' END AS campaign
    FROM analytics_users
    WHERE signup_day + getvariable('response_days')::INTEGER <= getvariable('as_of')::DATE
), responded AS (
    SELECT m.user_key, m.campaign, min(date_diff('day', m.signup_day, d.day)) AS first_response
    FROM members m JOIN core.user_daily d USING (user_key)
    WHERE d.purchases > 0 AND d.day >= m.signup_day AND d.day <= getvariable('as_of')
    GROUP BY ALL
), sizes AS (SELECT campaign, count(*) AS users FROM members WHERE campaign IS NOT NULL GROUP BY campaign),
days AS (SELECT range::INTEGER AS d FROM range(0, getvariable('response_days')::INTEGER + 1)),
curve AS (
    SELECT days.d, s.campaign, s.users,
           (SELECT count(*) FROM responded r WHERE r.campaign = s.campaign AND r.first_response <= days.d) AS hits
    FROM days, sizes s
)
SELECT getvariable('as_of')::DATE, array_to_string(getvariable('campaign_a'), ', '),
       array_to_string(getvariable('campaign_b'), ', '), a.d,
       a.users, a.hits, a.hits / a.users, b.users, b.hits, b.hits / b.users,
       (a.hits / a.users) / nullif(b.hits / b.users, 0)
FROM curve a JOIN curve b ON a.d = b.d AND a.campaign = 'a' AND b.campaign = 'b';
