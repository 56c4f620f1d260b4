-- Every published score of one day (variable: day), as the report shows them.
SELECT * FROM marts.user_scores WHERE day = getvariable('day');
