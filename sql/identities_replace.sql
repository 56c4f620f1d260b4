-- Replace core.identities with the resolved mapping held in relation `resolved` (one transaction;
-- identities_schema.sql runs first).
DELETE FROM core.identities;
INSERT INTO core.identities SELECT * FROM resolved ORDER BY user_key, id;
