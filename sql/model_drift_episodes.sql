-- Each model's latest monitoring row before day `before`: whether a drift episode was running, since when, and
-- for which champion version (a new champion starts a new episode).
SELECT model, day, model_version, verdict, shift_start
FROM marts.model_drift
WHERE day < getvariable('before')
QUALIFY row_number() OVER (PARTITION BY model ORDER BY day DESC) = 1
