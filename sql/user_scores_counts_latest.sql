-- Users scored per model on the last scored day.
SELECT model, count(*) FROM marts.user_scores
WHERE day = (SELECT max(day) FROM marts.user_scores)
GROUP BY model;
