-- table_count: the rows of {table}.
SELECT pg_catalog.count(*) FROM {table}
