-- Whether a table exists (variables: schema_name, table_name): many tables appear only with their first write.
SELECT count(*) > 0 FROM duckdb_tables()
WHERE schema_name = getvariable('schema_name') AND table_name = getvariable('table_name');
