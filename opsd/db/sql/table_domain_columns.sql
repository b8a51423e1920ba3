-- table_domain_columns: a table's columns whose type is a domain, or an array of one, with a CHECK constraint
-- anywhere down its chain of base types (reading such a value in, as COPY does, runs the CHECK), and the SQL
-- type they would be stored as without it (the base type, with the innermost domain's modifier).
-- %(name)s: quoted SCHEMA.TABLE, as regclass input.
WITH RECURSIVE walk AS (
  SELECT a.attnum, a.attname::text AS name,
         CASE WHEN e.typtype = 'd' THEN e.oid ELSE a.atttypid END AS typ,
         e.typtype = 'd' AS is_array, a.atttypmod AS typmod, false AS checked
  FROM pg_catalog.pg_attribute a
  JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
  LEFT JOIN pg_catalog.pg_type e ON e.oid = t.typelem AND t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
  WHERE a.attrelid = pg_catalog.to_regclass(%(name)s) AND a.attnum > 0 AND NOT a.attisdropped
  UNION ALL
  SELECT w.attnum, w.name, d.typbasetype, w.is_array, d.typtypmod,
         w.checked OR EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.contypid = d.oid AND c.contype = 'c')
  FROM walk w JOIN pg_catalog.pg_type d ON d.oid = w.typ AND d.typtype = 'd'
)
SELECT w.name,
       pg_catalog.format_type(w.typ, w.typmod) || CASE WHEN w.is_array THEN '[]' ELSE '' END AS base_type
FROM walk w JOIN pg_catalog.pg_type b ON b.oid = w.typ
WHERE b.typtype <> 'd' AND w.checked
ORDER BY w.attnum
