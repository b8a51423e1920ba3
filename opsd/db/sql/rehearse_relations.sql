-- rehearse_relations: every relation with storage in the database's own schemas (a migration's targets), with
-- its file node (a new one after the migration: rewritten), size, estimated rows, and for an index its table and
-- whether it is valid, and its access method. Read on a rehearsal's copy before and after the migration.
SELECT c.oid::bigint AS oid,
       c.oid::pg_catalog.regclass::text AS name,
       c.relkind::text AS kind,
       c.relfilenode::bigint AS filenode,
       pg_catalog.pg_relation_size(c.oid)::bigint AS bytes,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS rows,  -- NULL: never analyzed
       i.indrelid::pg_catalog.regclass::text AS table_name,
       COALESCE(i.indisvalid AND i.indisready, true) AS valid,
       COALESCE(am.amname::text, '') AS am
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam AND c.relkind = 'i'
WHERE c.relkind IN ('r', 'i', 'm')
  AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname !~ '^pg_toast'
ORDER BY c.oid
