-- Per property (variable: properties), the average number of distinct values a distinct_id had: a property of
-- the user (company size, role) keeps its value, one of the event (a basket's items) changes all the time.
SELECT property, avg(n) FROM (
    SELECT p.property, e.distinct_id, count(DISTINCT e.properties ->> ('$."' || p.property || '"')) AS n
    FROM raw.events e CROSS JOIN (SELECT unnest(getvariable('properties')::VARCHAR[]) AS property) p
    WHERE e.properties ->> ('$."' || p.property || '"') IS NOT NULL
    GROUP BY ALL)
GROUP BY property;
