-- table_columns: a table's live columns in order (dropped ones skipped), with how each gets its value: identity
-- ('a' GENERATED ALWAYS, 'd' BY DEFAULT, '' none) and generation ('s' stored generated, '' none).
-- %(name)s: quoted SCHEMA.TABLE.
SELECT a.attname::text AS name, a.attidentity::text AS identity, a.attgenerated::text AS generated
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = pg_catalog.to_regclass(%(name)s) AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
