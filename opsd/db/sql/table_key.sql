-- table_key: the columns of a table's primary key, in key order (none: no primary key).
SELECT a.attname::text
FROM pg_index i
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
WHERE i.indrelid = to_regclass(%(name)s) AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
