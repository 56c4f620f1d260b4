-- Replace one day's scores with relation `frame` (the day's scores of every model): idempotent per day.
DELETE FROM marts.user_scores WHERE day = getvariable('day');
INSERT INTO marts.user_scores BY NAME SELECT * FROM frame;
