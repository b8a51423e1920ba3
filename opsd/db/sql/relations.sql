-- relations: every relation of one database (temporary ones aside: another session's, gone in a copy), with what
-- decides its verdict (actions/drill/classify.py): kind, persistence, whether the data it holds or indexes was
-- ever populated (a matview created WITH NO DATA: itself, its indexes, its TOAST table and that one's index),
-- the index access method and whether the index is valid.
WITH toast_owner AS (
    SELECT reltoastrelid AS toast, oid AS owner FROM pg_catalog.pg_class WHERE reltoastrelid <> 0
)
SELECT c.oid::pg_catalog.regclass::text AS name,
       c.relkind::text AS kind,
       n.nspname::text AS schema,
       c.relpages::bigint AS pages,
       c.relpersistence::text AS persistence,
       COALESCE(o.relispopulated, c.relispopulated) AS populated,
       COALESCE(am.amname::text, '') AS am,
       COALESCE(i.indisvalid AND i.indisready, true) AS valid
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam AND c.relkind IN ('i', 'I')
LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid
LEFT JOIN toast_owner tw ON tw.toast = COALESCE(i.indrelid, c.oid)
LEFT JOIN pg_catalog.pg_class o ON o.oid = COALESCE(tw.owner, i.indrelid)
WHERE c.relpersistence <> 't'
ORDER BY c.relkind, c.oid
