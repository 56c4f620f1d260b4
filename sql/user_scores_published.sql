-- The scores published up to a day (variable: until): what drift and realised performance are judged on.
SELECT day, model, user_key, score, model_version FROM marts.user_scores WHERE day <= getvariable('until');
