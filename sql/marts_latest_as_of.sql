-- The latest as-of date built in one marts table (variable: qualified_name).
SELECT max(as_of) FROM query_table(getvariable('qualified_name'));
