-- The customer's latest day of core.user_daily (null when empty).
SELECT max(day) FROM core.user_daily;
