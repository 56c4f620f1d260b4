-- The rows of one marts table (variable: qualified_name, e.g. 'marts.channels') as of a date (variable: as_of).
SELECT * FROM query_table(getvariable('qualified_name')) WHERE as_of = getvariable('as_of');
