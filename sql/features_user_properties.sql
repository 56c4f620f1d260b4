-- Each canonical user's values of the customer's own properties (variable: properties) up to a day (variable:
-- until), with the first day the user had each value.
SELECT coalesce(i.user_key, e.distinct_id) AS user_key, p.property,
       e.properties ->> ('$."' || p.property || '"') AS value, min(e.event_date) AS since
FROM raw.events e
CROSS JOIN (SELECT unnest(getvariable('properties')::VARCHAR[]) AS property) p
LEFT JOIN core.identities i ON i.id = e.distinct_id
WHERE e.event_date <= getvariable('until') AND e.properties ->> ('$."' || p.property || '"') IS NOT NULL
GROUP BY ALL;
