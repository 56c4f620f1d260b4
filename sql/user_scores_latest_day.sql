-- The last day with published scores (NULL before the first scoring run).
SELECT max(day) FROM marts.user_scores;
