-- table_key: the columns of a table's primary key, in key order, with their SQL types (none: no primary key).
-- %(name)s: quoted SCHEMA.TABLE.
SELECT a.attname::text AS name, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum OPERATOR(pg_catalog.=) ANY (i.indkey)
WHERE i.indrelid = pg_catalog.to_regclass(%(name)s) AND i.indisprimary
ORDER BY pg_catalog.array_position(i.indkey::int2[], a.attnum)
