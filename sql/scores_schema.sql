-- Published scores and model monitoring of one customer (marts schema of the customer's warehouse).
CREATE SCHEMA IF NOT EXISTS marts;
-- One row per scoring day, model and user of the model's population.
CREATE TABLE IF NOT EXISTS marts.user_scores (
    day               DATE NOT NULL,       -- the as-of date scored (features from data on or before it)
    model             VARCHAR NOT NULL,    -- churn | conversion | goal | ltv
    user_key          VARCHAR NOT NULL,    -- canonical user (core.identities)
    score             DOUBLE,              -- calibrated probability; ltv: predicted revenue over the horizon
    percentile        DOUBLE,              -- 0-100 within the customer's scored population of the model
    band              VARCHAR,             -- high | medium | low (customers.yaml `scoring`)
    reason_1          VARCHAR,             -- the top 3 reasons (SHAP), in words
    reason_2          VARCHAR,
    reason_3          VARCHAR,
    registered_model  VARCHAR,             -- <customer>-<model> in the MLflow registry
    model_version     VARCHAR,             -- the champion version that scored
    model_family      VARCHAR,             -- catboost | logistic | linear | btyd: which candidate family serves
    revenue_at_risk   DOUBLE,              -- probability of churn x predicted ltv (users with both scores)
    scored_at         TIMESTAMPTZ,
    PRIMARY KEY (day, model, user_key)
);
-- warehouses created before model families were recorded
ALTER TABLE marts.user_scores ADD COLUMN IF NOT EXISTS model_family VARCHAR;
-- One row per day and model: the drift verdict and realised performance.
CREATE TABLE IF NOT EXISTS marts.model_drift (
    day                       DATE NOT NULL,
    model                     VARCHAR NOT NULL,
    model_version             VARCHAR,
    verdict                   VARCHAR,     -- ok | drift | underperforming | too few rows | no reference | no champion
    retrain                   BOOLEAN,
    reasons                   VARCHAR,
    rows_reference            INTEGER,
    rows_current              INTEGER,
    prediction_psi            DOUBLE,
    drifted_features          INTEGER,
    drifted_importance_share  DOUBLE,
    max_feature_psi           DOUBLE,
    realised_scored_day       DATE,        -- the earlier scoring day whose labels matured
    realised_metric           VARCHAR,     -- roc_auc | normalized_gini
    realised_value            DOUBLE,      -- of the scores published that day
    realised_test_value       DOUBLE,      -- what the model scored on its test set
    realised_outcomes         INTEGER,     -- positives (ltv: payers) among the realised users
    shift_start               DATE,        -- the first scored day of the drift episode (inputs or scores drifted)
    retrain_after             DATE,        -- the first day post-drift data can train and test a retrain
    status                    VARCHAR,     -- retrain requested | retrain pending until <day> | no retrain: ...
    PRIMARY KEY (day, model)
);
-- warehouses created before drift episodes were recorded
ALTER TABLE marts.model_drift ADD COLUMN IF NOT EXISTS shift_start DATE;
ALTER TABLE marts.model_drift ADD COLUMN IF NOT EXISTS retrain_after DATE;
ALTER TABLE marts.model_drift ADD COLUMN IF NOT EXISTS status VARCHAR;
-- One row per day, model and feature.
CREATE TABLE IF NOT EXISTS marts.feature_drift (
    day               DATE NOT NULL,
    model             VARCHAR NOT NULL,
    feature           VARCHAR NOT NULL,
    kind              VARCHAR,             -- numeric (KS test) | categorical (chi-square test)
    psi               DOUBLE,
    statistic         DOUBLE,
    p_value           DOUBLE,
    importance_share  DOUBLE,              -- share of the model's mean |SHAP|
    drifted           BOOLEAN,
    PRIMARY KEY (day, model, feature)
);
