-- Per property (variable: properties), the average number of distinct values a distinct_id had: a property of
-- the user (company size, role) keeps its value, one of the event (a basket's items) changes all the time.
-- Variable property_paths: the properties' JSON pointers (names.json_pointer), in the same order.
SELECT property, avg(n) FROM (
    SELECT p.property, e.distinct_id, count(DISTINCT e.properties ->> p.path) AS n
    FROM raw.events e
    CROSS JOIN (SELECT unnest(getvariable('properties')::VARCHAR[]) AS property,
                       unnest(getvariable('property_paths')::VARCHAR[]) AS path) p
    WHERE e.properties ->> p.path IS NOT NULL
    GROUP BY ALL)
GROUP BY property;
