-- relations: what a drill checks in one database: tables, materialized views and TOAST tables (heap checks,
-- full reads) and valid B-tree indexes (bt_index_check). Temporary relations are skipped.
SELECT c.oid::regclass::text AS name,
       c.relkind::text AS kind,
       n.nspname AS schema,
       c.relpages::bigint AS pages
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_am am ON am.oid = c.relam
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE c.relpersistence <> 't'
  AND (c.relkind IN ('r', 'm', 't')
       OR (c.relkind = 'i' AND am.amname = 'btree' AND i.indisvalid AND i.indisready))
ORDER BY c.relkind, c.oid
