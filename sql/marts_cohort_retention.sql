-- Weekly cohort retention as of `as_of` (marts.cohort_retention): for each sign-up week (Monday) and each
-- following week k = 0, 1, ..., the share of the cohort's users active in week k. Only weeks that ended on or
-- before as_of are shown (a week in progress would look like churn). Needs analytics_users.
CREATE TABLE IF NOT EXISTS marts.cohort_retention (
    as_of DATE, cohort_week DATE, cohort_users BIGINT, week_number INTEGER, active_users BIGINT, retention DOUBLE);
DELETE FROM marts.cohort_retention WHERE as_of = getvariable('as_of');
INSERT INTO marts.cohort_retention
WITH cohorts AS (
    SELECT user_key, date_trunc('week', signup_day)::DATE AS cohort_week FROM analytics_users
), sizes AS (SELECT cohort_week, count(*) AS cohort_users FROM cohorts GROUP BY cohort_week),
activity AS (
    SELECT DISTINCT c.cohort_week, c.user_key,
           (date_diff('day', c.cohort_week, date_trunc('week', d.day)::DATE) // 7)::INTEGER AS week_number
    FROM core.user_daily d JOIN cohorts c USING (user_key)
    WHERE d.day <= getvariable('as_of') AND d.events > 0
), weeks AS (      -- every complete week of every cohort, so weeks with no active user show 0
    SELECT s.cohort_week, s.cohort_users, k.week_number
    FROM sizes s, range(0, 1 + date_diff('day', (SELECT min(cohort_week) FROM sizes), getvariable('as_of')::DATE) // 7)
         AS k(week_number)
    WHERE s.cohort_week + ((k.week_number + 1) * 7 - 1)::INTEGER <= getvariable('as_of')::DATE
)
SELECT getvariable('as_of')::DATE, w.cohort_week, w.cohort_users, w.week_number::INTEGER,
       count(a.user_key), count(a.user_key) / w.cohort_users
FROM weeks w LEFT JOIN activity a ON a.cohort_week = w.cohort_week AND a.week_number = w.week_number
GROUP BY w.cohort_week, w.cohort_users, w.week_number;
