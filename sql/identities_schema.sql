-- core.identities: every distinct_id and device id of a customer mapped to its canonical user.
CREATE SCHEMA IF NOT EXISTS core;
CREATE TABLE IF NOT EXISTS core.identities (
    id              VARCHAR   NOT NULL,  -- a distinct_id, or a device id as '$device:<id>'
    id_type         VARCHAR   NOT NULL,  -- 'distinct_id' | 'device_id'
    user_key        VARCHAR   NOT NULL,  -- the canonical user every downstream table counts by
    is_identified   BOOLEAN   NOT NULL,  -- the canonical user is a known user id (not an anonymous device)
    resolved_by     VARCHAR   NOT NULL,  -- self | simplified | identify | alias | merge
    first_seen      TIMESTAMP,
    last_seen       TIMESTAMP
);
