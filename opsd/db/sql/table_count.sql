-- table_count: the rows of {table}.
SELECT count(*) FROM {table}
