-- Candidate user-level properties of the customer (features_user_properties.sql reads their values): not
-- Mixpanel's ($, mp_, utm_), not ids, with their share of all events filled, distinct values and whether text.
SELECT p.property,
       sum(p.fill_rate * c.events) / (SELECT sum(events) FROM core.event_catalog) AS fill,
       max(p.distinct_values) AS levels,
       bool_or(list_contains(p.observed_types, 'VARCHAR')) AS is_text
FROM core.event_properties p JOIN core.event_catalog c USING (event)
WHERE p.property NOT LIKE '$%' AND p.property NOT LIKE 'mp\_%' ESCAPE '\'
  AND p.property NOT LIKE 'utm\_%' ESCAPE '\' AND p.property NOT IN ('time', 'distinct_id', 'token')
  AND lower(p.property) NOT LIKE '%\_id' ESCAPE '\' AND lower(p.property) <> 'id'
GROUP BY p.property
ORDER BY p.property;
