-- table_nodes: the file node of each heap a relation has now (a partitioned table: each leaf partition's), with
-- the tablespace and database they live in. %(oid)s: the relation (resolved by table_resolve); no row: it has
-- no storage of its own (a view, a foreign table, a partitioned table without partitions).
SELECT t.oid::bigint AS table_oid,
       d.oid::bigint AS database,
       COALESCE(NULLIF(c.reltablespace, 0), d.dattablespace)::bigint AS tablespace,
       pg_catalog.pg_relation_filenode(c.oid)::bigint AS filenode
FROM (SELECT %(oid)s::pg_catalog.oid AS oid) t
JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database()
JOIN pg_catalog.pg_class c ON c.oid = t.oid
                           OR c.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(t.oid) p WHERE p.isleaf)
WHERE c.relkind IN ('r', 'm') AND pg_catalog.pg_relation_filenode(c.oid) IS NOT NULL
