-- core.user_daily up to a day (variable: until).
SELECT * FROM core.user_daily WHERE day <= getvariable('until') ORDER BY user_key, day;
