-- Each canonical user's values of the customer's own properties (variables: properties, and property_paths their
-- JSON pointers, names.json_pointer) up to a day (variable: until), with the first day the user had each value.
SELECT coalesce(i.user_key, e.distinct_id) AS user_key, p.property,
       e.properties ->> p.path AS value, min(e.event_date) AS since
FROM raw.events e
CROSS JOIN (SELECT unnest(getvariable('properties')::VARCHAR[]) AS property,
                   unnest(getvariable('property_paths')::VARCHAR[]) AS path) p
LEFT JOIN core.identities i ON i.id = e.distinct_id
WHERE e.event_date <= getvariable('until') AND e.properties ->> p.path IS NOT NULL
GROUP BY ALL;
