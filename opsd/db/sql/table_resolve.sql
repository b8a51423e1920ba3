-- table_resolve: every relation of this database whose schema and name equal %(schema)s and %(name)s ignoring
-- case (the caller keeps the exact ones for a name given in SQL form), with its kind, persistence and, in SQL
-- form, what to give instead of it: a view's or materialized view's tables, a partitioned table's leaf
-- partitions, a foreign table's server. No row: no relation of that name.
SELECT c.oid::bigint AS oid, n.nspname::text AS schema, c.relname::text AS name, c.relkind::text AS kind,
       c.relpersistence::text AS persistence,
       CASE
         WHEN c.relkind IN ('v', 'm') THEN ARRAY(
           SELECT DISTINCT pg_catalog.format('%%I.%%I', rn.nspname, rc.relname)
           FROM pg_catalog.pg_rewrite rw
           JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_rewrite'::pg_catalog.regclass
                                      AND d.objid = rw.oid
                                      AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
           JOIN pg_catalog.pg_class rc ON rc.oid = d.refobjid
           JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
           WHERE rw.ev_class = c.oid AND rc.oid <> c.oid AND rc.relkind IN ('r', 'p', 'v', 'm', 'f')
           ORDER BY 1)
         WHEN c.relkind = 'p' THEN ARRAY(
           SELECT pg_catalog.format('%%I.%%I', pn.nspname, pc.relname)
           FROM pg_catalog.pg_partition_tree(c.oid) p
           JOIN pg_catalog.pg_class pc ON pc.oid = p.relid
           JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
           WHERE p.isleaf
           ORDER BY 1)
         WHEN c.relkind = 'f' THEN ARRAY(
           SELECT s.srvname::text
           FROM pg_catalog.pg_foreign_table ft
           JOIN pg_catalog.pg_foreign_server s ON s.oid = ft.ftserver
           WHERE ft.ftrelid = c.oid)
         ELSE '{}'::text[]
       END AS related
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE pg_catalog.lower(n.nspname) OPERATOR(pg_catalog.=) pg_catalog.lower(%(schema)s)
  AND pg_catalog.lower(c.relname) OPERATOR(pg_catalog.=) pg_catalog.lower(%(name)s)
ORDER BY n.nspname, c.relname
