-- table_owner_code: what in a table's shape evaluates expressions when rows are written or indexed: its CHECK
-- constraints, and its indexes on expressions or with a predicate ('constraint' for an exclusion constraint's
-- own index: dropped with the constraint). %(name)s: quoted SCHEMA.TABLE, as regclass input.
WITH t AS (SELECT pg_catalog.to_regclass(%(name)s) AS oid)
SELECT 'check'::text AS kind, co.conname::text AS name, pg_catalog.pg_get_constraintdef(co.oid) AS detail
FROM pg_catalog.pg_constraint co, t
WHERE co.conrelid = t.oid AND co.contype = 'c'
UNION ALL
SELECT CASE WHEN co.oid IS NULL THEN 'index' ELSE 'constraint' END,
       COALESCE(co.conname, ci.relname)::text,
       pg_catalog.pg_get_indexdef(i.indexrelid)
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ci ON ci.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_constraint co ON co.conindid = i.indexrelid AND co.conrelid = i.indrelid
CROSS JOIN t
WHERE i.indrelid = t.oid AND (i.indexprs IS NOT NULL OR i.indpred IS NOT NULL)
