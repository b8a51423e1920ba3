-- table_columns: a table's live columns in order (dropped ones skipped). %(name)s: quoted SCHEMA.TABLE.
SELECT a.attname::text
FROM pg_attribute a
WHERE a.attrelid = to_regclass(%(name)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
