-- The latest feature frame of the customer (relation `frame`, built in Polars), replacing the previous one.
CREATE SCHEMA IF NOT EXISTS features;
CREATE OR REPLACE TABLE features.user_features AS SELECT * FROM frame;
