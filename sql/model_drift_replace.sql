-- Replace one day's monitoring rows with relations `drift` (per model) and `features` (per model and feature).
DELETE FROM marts.model_drift WHERE day = getvariable('day');
DELETE FROM marts.feature_drift WHERE day = getvariable('day');
INSERT INTO marts.model_drift BY NAME SELECT * FROM drift;
INSERT INTO marts.feature_drift BY NAME SELECT * FROM features;
