-- Ids of core.identities per way they were resolved (self, simplified, identify, alias, merge).
SELECT resolved_by, count(*) FROM core.identities GROUP BY 1 ORDER BY 1;
