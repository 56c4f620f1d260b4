-- One day of core.user_daily summed (variable: day): users, events, sessions, revenue, purchases, sign-ups.
SELECT count(*), coalesce(sum(events), 0), coalesce(sum(sessions), 0), coalesce(sum(revenue), 0),
       coalesce(sum(purchases), 0), coalesce(sum(signups), 0)
FROM core.user_daily
WHERE day = getvariable('day');
